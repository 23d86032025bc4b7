#include "cycle/cycle.hpp"

#include <signal.h>

#include <catch2/catch.hpp>
#include <new>
#include <stdexcept>
#include <system_error>

#include "prefect/fake_client.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::FakeSleeper;
using pc::testing::FakeTransport;

namespace {

const char* kPool =
    R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"PAUSED"})";

const char* kDueRun = R"([{"id":"r1","name":"due","state":{"type":"SCHEDULED"}}])";

// A worker phase that throws whatever the test gives it.
class ThrowingWorker final : public WorkerPhase {
 public:
  explicit ThrowingWorker(std::function<void()> thrower) : thrower_(std::move(thrower)) {}
  WorkerPhaseResult run(const Logger&) override {
    thrower_();
    return {};
  }

 private:
  std::function<void()> thrower_;
};

struct Fixture : pc::testing::FakeClient {
  Config config;
  std::ostringstream out;
  Logger log{LogLevel::kDebug, LogFormat::kText, std::make_shared<Redactor>(), out};
  int signal = 0;

  Fixture() {
    config.work_pool = "etl";
    config.worker_name = "w";
  }

  ExitCode run(std::function<void()> thrower, CycleSummary& summary) {
    CycleDeps deps{client,
                   pc::real_clock(),
                   sleeper,
                   [](const Logger&) { return PreflightReport{}; },
                   [thrower](const WorkPool&, const PreflightReport&, WorkerHooks) {
                     return std::make_unique<ThrowingWorker>(thrower);
                   },
                   [this] { return signal; },
                   [] { return false; }};
    return run_cycle(config, log, deps, summary);
  }

  // The requests of a cycle whose worker phase fails, up to the pause.
  void script_until_worker() {
    transport
        .reply(200, kPool)    // preflight: read the pool, with
        .reply(200, kDueRun)  // the due runs: one, so the cycle is not empty
        .reply(204);          // resume
  }
  // The pause after a failed worker phase (no wait).
  void script_pause() {
    transport
        .reply(200, "[]")   // other workers of the pool
        .reply(204)         // pause
        .reply(204)         // delete our worker row
        .reply(200, kPool)  // the pool read back (our row's heartbeats unknown): PAUSED
        ;
  }
  // The wait, then the pause.
  void script_wait_and_pause() {
    transport
        .reply(200, "0")   // the wait: nothing active, with
        .reply(200, "[]")  // the other workers of the pool
        .reply(204)        // pause, while our worker row is online
        .reply(204)        // then delete that row
        ;
  }
  bool paused() const {
    for (const auto& r : transport.requests) {
      if (r.method == "PATCH" && r.url == "http://h/api/work_pools/etl" &&
          r.body == R"({"is_paused":true})") {
        return true;
      }
    }
    return false;
  }
};

}  // namespace

TEST_CASE("run_cycle: any exception escaping a phase still reaches the pause", "[cycle]") {
  Fixture f;
  f.script_until_worker();
  f.script_pause();
  CycleSummary summary;
  std::string expected;
  ExitCode code = ExitCode::kOk;

  SECTION("std::runtime_error") {
    code = f.run([] { throw std::runtime_error("boom"); }, summary);
    expected = "internal error: boom";
  }
  SECTION("std::bad_alloc") {
    code = f.run([] { throw std::bad_alloc(); }, summary);
    expected = "internal error: std::bad_alloc";
  }
  SECTION("std::system_error") {
    code = f.run(
        [] {
          throw std::system_error(std::make_error_code(std::errc::too_many_files_open), "pipe");
        },
        summary);
    expected = "internal error: pipe: Too many open files";
  }
  SECTION("a JSON type_error") {
    code = f.run([] { (void)json::parse("[1]").at(0).get<std::string>(); }, summary);
    expected = "internal error: [json.exception.type_error.302] type must be string, but is number";
  }
  CHECK(code == ExitCode::kApi);
  CHECK(summary.message == expected);
  CHECK(f.paused());
  CHECK(summary.pool_paused_at_end == true);
  CHECK(f.transport.pending() == 0);
  // The failure is told once, by the phase's own line.
  const std::string text = f.out.str();
  CHECK(text.find("[phase=worker] phase failed in ") != std::string::npos);
  CHECK(text.find(expected) == text.rfind(expected));
}

TEST_CASE("run_cycle: a cycle that ends before its worker deletes no worker row", "[cycle]") {
  Fixture f;  // nothing scripted: every request fails as a refused connection would
  CycleSummary summary;
  CHECK(f.run([] {}, summary) == ExitCode::kApi);
  for (const auto& r : f.transport.requests) {
    CHECK(r.method != "DELETE");
  }
}

TEST_CASE("run_cycle: a pc::Error in the worker phase is reported once and paused", "[cycle]") {
  Fixture f;
  f.script_until_worker();
  f.script_pause();
  CycleSummary summary;
  ExitCode code = f.run(
      [] { throw Error(ExitCode::kApi, "the API went away", Hint::kApiUnreachable); }, summary);
  CHECK(code == ExitCode::kApi);
  CHECK(summary.message.rfind("the API went away; fix: ", 0) == 0);
  CHECK(f.paused());
  const std::string text = f.out.str();
  CHECK(text.find("the API went away") == text.rfind("the API went away"));
}

TEST_CASE("run_cycle: an empty cycle changes nothing on the server", "[cycle]") {
  Fixture f;
  bool worker_made = false;
  int preflights = 0;
  auto run = [&](CycleSummary& summary) {
    CycleDeps deps{f.client,
                   pc::real_clock(),
                   f.sleeper,
                   [&](const Logger&) {
                     ++preflights;
                     return PreflightReport{};
                   },
                   [&](const WorkPool&, const PreflightReport&, WorkerHooks) {
                     worker_made = true;
                     return std::make_unique<ThrowingWorker>([] {});
                   },
                   [] { return 0; },
                   [] { return false; }};
    return run_cycle(f.config, f.log, deps, summary);
  };
  CycleSummary summary;

  SECTION("a paused pool with nothing due or active: three reads in two rounds, no write") {
    f.transport.reply(200, kPool).reply(200, "[]").reply(200, "0");
    CHECK(run(summary) == ExitCode::kOk);
    REQUIRE(f.transport.requests.size() == 3);
    CHECK(f.transport.rounds == std::vector<std::size_t>{2, 1});
    CHECK(f.transport.requests[0].method == "GET");
    CHECK(f.transport.requests[1].url == "http://h/api/flow_runs/filter");
    CHECK(f.transport.requests[2].url == "http://h/api/flow_runs/count");
    CHECK_FALSE(worker_made);
    CHECK(summary.pool_paused_at_end == true);
    CHECK_FALSE(summary.pool_resumed);
    CHECK(f.out.str().find("nothing is changed on the server") != std::string::npos);
    // Idle means idle: no sync, install or probe, whatever is configured.
    CHECK(preflights == 0);
    REQUIRE_FALSE(summary.phases.empty());
    CHECK(summary.phases[0].status == PhaseStatus::kSkipped);
    CHECK(summary.phases[0].message.rfind("nothing due or active", 0) == 0);
  }
  SECTION("a pool someone resumed is paused all the same") {
    f.transport
        .reply(200,
               R"({"id":"p1","name":"etl","type":"process","is_paused":false,"status":"READY"})")
        .reply(200, "[]")
        .reply(200, "0")
        .reply(200, "[]")  // other workers of the pool
        .reply(204);       // pause
    CHECK(run(summary) == ExitCode::kOk);
    CHECK(f.paused());
    CHECK_FALSE(worker_made);
    CHECK(summary.pool_paused_at_end == true);
  }
  SECTION("an active run (a killed cycle's) makes it a full cycle, so it is recovered") {
    f.transport.reply(200, kPool).reply(200, "[]").reply(200, "1").reply(204);
    f.script_wait_and_pause();
    CHECK(run(summary) == ExitCode::kOk);
    CHECK(worker_made);
    CHECK(preflights == 1);
    CHECK(f.paused());
    CHECK(f.transport.pending() == 0);
    // The pool with the due runs; the active count; the resume; the wait's
    // count with the workers; the pause; our worker row's DELETE.
    CHECK(f.transport.rounds == std::vector<std::size_t>{2, 1, 1, 2, 1, 1});
  }
  SECTION("a deployment to trigger is never an empty cycle") {
    f.config.trigger_deployments = {{"flow", "dep"}};
    f.transport.reply(200, kPool).reply(404, R"({"detail":"Not found"})");
    CHECK(run(summary) == ExitCode::kUsage);
    CHECK(f.transport.requests[1].url.find("/deployments/name/") != std::string::npos);
  }
}

namespace {

// A worker phase that ends with the records the test gives it.
class RecordsWorker final : public WorkerPhase {
 public:
  explicit RecordsWorker(std::vector<RunRecord> records) : records_(std::move(records)) {}
  WorkerPhaseResult run(const Logger&) override {
    WorkerPhaseResult result;
    result.runs = records_;
    return result;
  }

 private:
  std::vector<RunRecord> records_;
};

}  // namespace

TEST_CASE("run_cycle: the summary reads again only the runs the worker did not see end",
          "[cycle]") {
  Fixture f;
  f.transport.reply(200, kPool)
      .reply(200, R"([{"id":"r1","name":"one","state":{"type":"SCHEDULED"}},
                      {"id":"r2","name":"two","state":{"type":"SCHEDULED"}}])")
      .reply(204);  // resume
  f.script_wait_and_pause();
  f.transport.reply(200, R"([{"id":"r2","name":"two","state":{"type":"FAILED"}}])");
  // r1 ended under our worker; r2 was another host's.
  std::vector<RunRecord> records{{"r1", "one", "COMPLETED", "Completed", ""}};
  CycleDeps deps{f.client,
                 pc::real_clock(),
                 f.sleeper,
                 [](const Logger&) { return PreflightReport{}; },
                 [&](const WorkPool&, const PreflightReport&, WorkerHooks) {
                   return std::make_unique<RecordsWorker>(records);
                 },
                 [] { return 0; },
                 [] { return false; }};
  CycleSummary summary;

  CHECK(run_cycle(f.config, f.log, deps, summary) == ExitCode::kRunsFailed);

  CHECK(f.transport.pending() == 0);
  const auto& last = f.transport.requests.back();  // after the pause and the DELETE
  CHECK(last.url == "http://h/api/flow_runs/filter");
  CHECK(json::parse(last.body)["flow_runs"]["id"]["any_"] == json::array({"r2"}));
  REQUIRE(summary.runs.size() == 2);
  CHECK(summary.runs[0].id == "r1");
  CHECK(summary.runs[0].state_type == "COMPLETED");
  CHECK(summary.runs[1].id == "r2");
  CHECK(summary.runs[1].state_type == "FAILED");
}
