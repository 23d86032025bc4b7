#include "worker/native/claims.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "worker/fake_prefect.hpp"

using namespace pc;
using namespace pc::testing;

namespace {

// Claims alone, over the in-memory server: `started` is what it handed on.
struct ClaimsHarness : FakeApi {
  Timers timers{clock};
  Logger log = Logger::null();
  Config config;
  WorkPool pool;
  RunUpdates updates{client, clock};
  Redactor redactor;
  RunJournal journal{client, clock, redactor, {"w", "process", "1.0", "p1", "etl"}, {}, log};
  Reports reports{client, timers, log, journal};
  std::vector<std::string> started;
  Claims claims{config,  pool,    client,
                timers,  log,     updates,
                journal, reports, [this](const Candidate& c) { started.push_back(c.run.id); }};

  ClaimsHarness() {
    config.api_url = "http://h/api";
    config.worker_name = "w";
    pool.name = "etl";
  }

  // `ids` polled SCHEDULED; the server holds them as `now`.
  void claim(const std::vector<std::string>& ids, const std::string& now = "SCHEDULED") {
    std::vector<FlowRun> polled;
    for (const auto& id : ids) {
      server.add_run(id, now);
      FlowRun run;
      run.id = id;
      run.name = "run-" + id;
      polled.push_back(run);
    }
    claims.claim(polled);
  }

  // What the loop does between its rounds, until nothing is in flight.
  void settle() {
    for (int round = 0; round < 1000 && (!claims.settled() || !reports.settled()); ++round) {
      client.poll_started(std::chrono::milliseconds(0));
      timers.fire_due();
      claims.send();
      clock.advance(std::chrono::milliseconds(100));
    }
  }
};

}  // namespace

TEST_CASE("Claims: no proposal before the first heartbeat has ended", "[worker][claims]") {
  ClaimsHarness h;
  h.claim({"c1", "c2"});
  CHECK(h.claims.in_flight() == 2);
  for (int round = 0; round < 5; ++round) {
    h.client.poll_started(std::chrono::milliseconds(0));
    h.claims.send();
  }
  CHECK(h.server.proposals.empty());
  CHECK_FALSE(h.claims.settled());

  h.claims.allow();
  h.settle();
  CHECK(h.claims.settled());
  CHECK(h.started == std::vector<std::string>{"c1", "c2"});
  CHECK(h.server.type_of("c1") == "PENDING");
}

TEST_CASE("Claims: a stop leaves what was not proposed SCHEDULED", "[worker][claims]") {
  ClaimsHarness h;
  h.claim({"c1"});
  h.client.poll_started(std::chrono::milliseconds(0));  // the re-read's answer
  h.claims.stop();
  CHECK(h.claims.settled());
  h.claims.allow();
  h.settle();
  CHECK(h.server.proposals.empty());
  CHECK(h.server.type_of("c1") == "SCHEDULED");
}

TEST_CASE("Claims: a lost answer to an applied claim is read, and the run is ours",
          "[worker][claims]") {
  ClaimsHarness h;
  h.server.on_set_state = [&](const std::string& id, const json& state,
                              int nth) -> std::optional<HttpResponse> {
    if (nth == 1) {
      h.server.apply(id, state);
      return answer(201, json("not an orchestration result"));
    }
    return std::nullopt;
  };
  h.claims.allow();
  h.claim({"c1"});
  h.settle();
  CHECK(h.server.proposals == std::vector<std::string>{"c1 PENDING"});
  CHECK(h.started == std::vector<std::string>{"c1"});
  CHECK(h.claims.skipped() == 0);
}

TEST_CASE("Claims: a run no longer SCHEDULED is skipped", "[worker][claims]") {
  ClaimsHarness h;
  h.claims.allow();
  h.claim({"c1"}, "RUNNING");
  h.settle();
  CHECK(h.started.empty());
  CHECK(h.claims.skipped() == 1);
  CHECK(h.server.proposals.empty());
}
