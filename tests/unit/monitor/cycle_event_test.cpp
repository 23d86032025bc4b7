#include "monitor/cycle_event.hpp"

#include <catch2/catch.hpp>

#include "prefect/fake_client.hpp"

using namespace pc;
using namespace pc::testing;
using json = nlohmann::json;

namespace {

CycleSummary failed_cycle() {
  CycleSummary s;
  s.pool = "my-pool";
  s.worker_name = "w";
  s.pool_resumed = true;
  s.pool_paused_at_end = true;
  s.exit_code = ExitCode::kRunsFailed;
  s.duration = std::chrono::milliseconds(2500);
  s.phases = {{"resume", PhaseStatus::kOk, std::chrono::milliseconds(120), ""},
              {"worker", PhaseStatus::kOk, std::chrono::milliseconds(2000), ""}};
  s.runs = {RunRecord{"r1", "a", "COMPLETED", "Completed", ""},
            RunRecord{"r2", "b", "FAILED", "Failed", ""}};
  return s;
}

const char* kPool = R"({"id":"pool-id","name":"my-pool","type":"process","is_paused":true})";

}  // namespace

TEST_CASE("cycle_event: the work pool, the summary's figures", "[monitor][events]") {
  const json e = cycle_event(failed_cycle(), "pool-id");
  CHECK(e["event"] == "prefect-cycle.cycle.failed");
  CHECK(e["resource"]["prefect.resource.id"] == "prefect.work-pool.pool-id");
  CHECK(e["resource"]["prefect.resource.name"] == "my-pool");
  CHECK(e["resource"]["prefect-cycle.pool-paused"] == "true");
  CHECK(e["resource"]["prefect-cycle.outcome"] == "runs_failed");
  CHECK(e["payload"]["exit_code"] == 1);
  CHECK(e["payload"]["runs_by_state"] == json{{"COMPLETED", 1}, {"FAILED", 1}});
  CHECK(e["payload"]["pool_paused_at_end"] == true);
  CHECK(e["payload"]["phase_seconds"] == json{{"resume", 0.12}, {"worker", 2.0}});
  CHECK(e["payload"]["duration_seconds"] == 2.5);

  CycleSummary ok = failed_cycle();
  ok.exit_code = ExitCode::kOk;
  ok.pool_paused_at_end = false;
  const json completed = cycle_event(ok, "pool-id");
  CHECK(completed["event"] == "prefect-cycle.cycle.completed");
  CHECK(completed["resource"]["prefect-cycle.pool-paused"] == "false");
  ok.pool_paused_at_end.reset();
  CHECK(cycle_event(ok, "pool-id")["resource"]["prefect-cycle.pool-paused"] == "unknown");
}

TEST_CASE("send_cycle_event: when, and to which servers", "[monitor][events]") {
  FakeClient f;
  Config config;
  config.api_url = "http://h/api";

  SECTION("a quiet tick writes nothing, reads nothing") {
    CycleSummary quiet;
    quiet.pool = "my-pool";
    send_cycle_event(config, f.client, quiet, Logger::null());
    CHECK(f.transport.requests.empty());
  }

  SECTION("a failed cycle on Prefect 3: one round of reads, then POST /events") {
    f.transport.reply(200, R"("3.8.8")").reply(200, kPool).reply(204);
    send_cycle_event(config, f.client, failed_cycle(), Logger::null());
    REQUIRE(f.transport.requests.size() == 3);
    CHECK(f.transport.rounds.front() == 2);
    CHECK(f.transport.requests[2].url == "http://h/api/events");
    const json sent = json::parse(f.transport.requests[2].body);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0]["event"] == "prefect-cycle.cycle.failed");
  }

  SECTION("the pool's id and the server's release known from the cycle: the POST alone") {
    CycleSummary s = failed_cycle();
    s.pool_id = "pool-id";
    s.server_version = "3.9.1";
    f.transport.reply(204);
    send_cycle_event(config, f.client, s, Logger::null());
    REQUIRE(f.transport.requests.size() == 1);
    CHECK(f.transport.requests[0].url == "http://h/api/events");
    const json sent = json::parse(f.transport.requests[0].body);
    CHECK(sent[0]["resource"]["prefect.resource.id"] == "prefect.work-pool.pool-id");
  }

  SECTION("the pool's id known, the release not (no worker ran): the release, then the POST") {
    CycleSummary s = failed_cycle();
    s.pool_id = "pool-id";
    f.transport.reply(200, R"("3.8.8")").reply(204);
    send_cycle_event(config, f.client, s, Logger::null());
    REQUIRE(f.transport.requests.size() == 2);
    CHECK(f.transport.requests[0].url == "http://h/api/admin/version");
    CHECK(f.transport.requests[1].url == "http://h/api/events");
  }

  SECTION("a 2.20 release known from the worker: no request at all") {
    CycleSummary s = failed_cycle();
    s.pool_id = "pool-id";
    s.server_version = "2.20.27";
    send_cycle_event(config, f.client, s, Logger::null());
    CHECK(f.transport.requests.empty());
  }

  SECTION("Prefect 2.20 has no events: nothing is posted") {
    f.transport.reply(200, R"("2.20.27")").reply(200, kPool);
    send_cycle_event(config, f.client, failed_cycle(), Logger::null());
    CHECK(f.transport.requests.size() == 2);
    CHECK(f.transport.pending() == 0);
  }

  SECTION("PREFECT_CYCLE_EMIT_EVENTS=false: nothing") {
    config.emit_events = false;
    send_cycle_event(config, f.client, failed_cycle(), Logger::null());
    CHECK(f.transport.requests.empty());
  }

  SECTION("a failure is a warning, never an exception") {
    f.transport.reply(200, R"("3.8.8")").reply(200, kPool).fail("Connection refused");
    CHECK_NOTHROW(send_cycle_event(config, f.client, failed_cycle(), Logger::null()));
  }

  SECTION("secrets in the message are redacted") {
    config.redactor->add_secret("hunter2-secret");
    CycleSummary s = failed_cycle();
    s.message = "auth hunter2-secret refused";
    f.transport.reply(200, R"("3.8.8")").reply(200, kPool).reply(204);
    send_cycle_event(config, f.client, s, Logger::null());
    REQUIRE(f.transport.requests.size() == 3);
    CHECK(f.transport.requests[2].body.find("hunter2") == std::string::npos);
  }
}
