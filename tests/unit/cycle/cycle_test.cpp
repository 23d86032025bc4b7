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
    CycleDeps deps{
        client,
        sleeper,
        [](const Logger&) { return PreflightReport{}; },
        [thrower](const WorkPool&, const PreflightReport&, std::function<std::string()>) {
          return std::make_unique<ThrowingWorker>(thrower);
        },
        [this] { return signal; },
        [] { return false; }};
    return run_cycle(config, log, deps, summary);
  }

  // The requests of a cycle whose worker phase fails, up to the pause.
  void script_until_worker() {
    transport
        .reply(200, kPool)  // preflight: read the pool
        .reply(204)         // resume
        .reply(200, "[]");  // the due runs
  }
  void script_pause() {
    transport
        .reply(204)        // delete our worker row
        .reply(200, "[]")  // other workers of the pool
        .reply(204)        // pause
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
