// The end of a cycle (cycle_end.cpp) on the FakeClock: the wait, its
// timeout, a stop signal during it, the wait for other workers, the pause's
// tries (after a stop signal too, and hurried by a second one), the first
// count made in the worker's last lap, our worker
// row's DELETE after the pause, and the pause read back for Prefect's
// Foreman when no row of ours was online.
#include <signal.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "common/fake_clock.hpp"
#include "cycle/cycle.hpp"

using namespace pc;
using pc::testing::ClockedSleeper;
using pc::testing::FakeClock;
using pc::testing::FakeTransport;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

const char* kPool =
    R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"PAUSED"})";
const char* kDueRun = R"([{"id":"r1","name":"due","state":{"type":"SCHEDULED"}}])";
const char* kPatchPause = R"({"is_paused":true})";

// A worker phase that runs `during` (a test delivers a signal there) and
// returns `result`. Given a client, it calls the cycle's last-lap hook, as
// the native worker does once its last process has ended, and waits for
// the calls the hook started.
class ScriptedWorker final : public WorkerPhase {
 public:
  ScriptedWorker(std::function<void()> during, WorkerPhaseResult result,
                 PrefectClient* client = nullptr, WorkerHooks hooks = {},
                 std::function<void()> after = nullptr)
      : during_(std::move(during)),
        result_(std::move(result)),
        client_(client),
        hooks_(std::move(hooks)),
        after_(std::move(after)) {}
  WorkerPhaseResult run(const Logger&) override {
    if (during_) {
      during_();
    }
    if (client_ != nullptr && hooks_.last_lap) {
      hooks_.last_lap();
      while (client_->in_flight()) {
        client_->poll_started(milliseconds(0));
      }
    }
    if (after_) {
      after_();
    }
    return result_;
  }

 private:
  std::function<void()> during_;
  WorkerPhaseResult result_;
  PrefectClient* client_;
  WorkerHooks hooks_;
  std::function<void()> after_;
};

struct Fixture {
  FakeClock clock;
  ClockedSleeper sleeper{clock};
  FakeTransport transport;
  ApiClient api{transport,      ApiOptions{"http://h/api", "", "", seconds(5)},
                Logger::null(), RetryPolicy{},
                sleeper,        clock};
  PrefectClient client{api};
  Config config;
  std::ostringstream out;
  Logger log{LogLevel::kDebug, LogFormat::kText, std::make_shared<Redactor>(), out};
  int first_signal = 0;
  int signals = 0;
  std::function<void()> during_worker;
  bool last_lap = false;           // the worker calls the cycle's last-lap hook
  std::size_t sent_by_worker = 0;  // requests sent when the worker phase returned
  WorkerPhaseResult worker_result;
  CycleSummary summary;

  Fixture() {
    config.work_pool = "etl";
    config.worker_name = "w";
    // The worker saw the due run end: the summary reads nothing again.
    worker_result.runs = {{"r1", "due", "COMPLETED", "Completed", ""}};
    sleeper.stopped = [this] { return signals > 0; };
    sleeper.hurried = [this] { return signals > 1; };
  }

  void signal(int sig) {
    if (first_signal == 0) {
      first_signal = sig;
    }
    ++signals;
  }

  ExitCode run() {
    CycleDeps deps{client,
                   clock,
                   sleeper,
                   [](const Logger&) { return PreflightReport{}; },
                   [this](const WorkPool&, const PreflightReport&, WorkerHooks hooks) {
                     return std::make_unique<ScriptedWorker>(
                         during_worker, worker_result, last_lap ? &client : nullptr,
                         std::move(hooks), [this] { sent_by_worker = transport.requests.size(); });
                   },
                   [this] { return first_signal; },
                   [this] { return signals > 1; }};
    return run_cycle(config, log, deps, summary);
  }

  // Preflight (the pool, with the due runs) and the resume.
  void script_start() { transport.reply(200, kPool).reply(200, kDueRun).reply(204); }
  // The wait's first round: the count with the pool's workers.
  void script_wait(const std::string& active, const std::string& workers = "[]") {
    transport.reply(200, active).reply(200, workers);
  }

  int counts() const {
    int n = 0;
    for (const auto& r : transport.requests) {
      n += r.url == "http://h/api/flow_runs/count";
    }
    return n;
  }
  int pauses() const {
    int n = 0;
    for (const auto& r : transport.requests) {
      n += r.method == "PATCH" && r.body == kPatchPause;
    }
    return n;
  }
  bool said(const std::string& text) const { return out.str().find(text) != std::string::npos; }
  PhaseStatus status_of(const std::string& phase) const {
    for (const auto& p : summary.phases) {
      if (p.name == phase) {
        return p.status;
      }
    }
    FAIL("no phase " << phase);
    return PhaseStatus::kSkipped;
  }
};

std::string worker_json(const std::string& name, std::chrono::system_clock::time_point beat) {
  return R"({"name":")" + name + R"(","status":"ONLINE","last_heartbeat_time":")" +
         format_iso8601(beat) + R"(","heartbeat_interval_seconds":30})";
}

}  // namespace

TEST_CASE("cycle end: the wait polls every PREFECT_WAIT_POLL_SECONDS until nothing is active",
          "[cycle]") {
  Fixture f;
  f.config.wait_poll = seconds(10);
  f.script_start();
  f.script_wait("2");
  f.transport.reply(200, "1").reply(200, "0");         // counts 10 s and 20 s later
  f.transport.reply(200, "[]").reply(204).reply(204);  // workers, pause, our row's DELETE
  CHECK(f.run() == ExitCode::kOk);
  CHECK(f.sleeper.slept == std::vector<milliseconds>{seconds(10), seconds(10)});
  CHECK(f.clock.elapsed() == seconds(20));
  CHECK(f.pauses() == 1);
  CHECK(f.summary.pool_paused_at_end == true);
  CHECK(f.said("no active flow runs in pool \"etl\" after 20.0 s"));
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("cycle end: the wait's first count goes in the worker's last lap", "[cycle]") {
  Fixture f;
  f.last_lap = true;
  f.script_start();

  SECTION("nothing active: the wait makes no request, the pause follows") {
    f.script_wait("0");                 // in the last lap: the count with the workers
    f.transport.reply(204).reply(204);  // the pause, our row's DELETE
    CHECK(f.run() == ExitCode::kOk);
    REQUIRE(f.transport.requests.size() == 7);
    CHECK(f.transport.requests[3].url == "http://h/api/flow_runs/count");
    CHECK(f.transport.requests[4].url == "http://h/api/work_pools/etl/workers/filter");
    CHECK(f.sent_by_worker == 5);  // the count and the workers went before the worker's end
    CHECK(f.transport.requests[5].method == "PATCH");
    CHECK(f.counts() == 1);
    CHECK(f.said("no active flow runs in pool \"etl\" after 0.0 s"));
  }
  SECTION("a run still active then (its final state set after the count): counted again at once") {
    f.script_wait("1");
    f.script_wait("0");  // the wait's own count, with the workers again
    f.transport.reply(204).reply(204);
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.counts() == 2);
    CHECK(f.sleeper.slept.empty());
    CHECK(f.said("counted in the worker's last lap: counting again"));
  }
  SECTION("the early count failed: the wait counts as usual, with no warning") {
    f.transport.reply(400, R"({"detail":"bad"})").reply(200, "[]");
    f.script_wait("0");
    f.transport.reply(204).reply(204);
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.counts() == 2);
    CHECK_FALSE(f.said("could not count"));
  }
  SECTION("PREFECT_WAIT_FOR_COMPLETION off: no count at all") {
    f.config.wait_for_completion = false;
    f.transport.reply(200, "[]").reply(204).reply(204);  // workers (pause), pause, DELETE
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.sent_by_worker == 3);
    CHECK(f.counts() == 0);
  }
  CHECK(f.pauses() == 1);
  CHECK(f.summary.pool_paused_at_end == true);
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("cycle end: the wait times out at PREFECT_WAIT_TIMEOUT_SECONDS", "[cycle]") {
  Fixture f;
  f.config.wait_poll = seconds(10);
  f.config.wait_timeout = seconds(25);
  f.script_start();
  f.script_wait("1");
  f.transport.reply(200, "1").reply(200, "1").reply(200, "1");  // at 10, 20 and 25 s
  f.transport.reply(200, "[]").reply(204).reply(204);
  CHECK(f.run() == ExitCode::kWaitTimeout);
  // The last sleep is what was left of the 25 s.
  CHECK(f.sleeper.slept == std::vector<milliseconds>{seconds(10), seconds(10), seconds(5)});
  CHECK(f.summary.message.find("wait timed out after 25 s (PREFECT_WAIT_TIMEOUT_SECONDS) with 1 "
                               "flow run(s) still active") == 0);
  CHECK(f.pauses() == 1);
  CHECK(f.summary.pool_paused_at_end == true);
}

TEST_CASE("cycle end: SIGTERM during the wait ends it at once, and the pool is paused", "[cycle]") {
  Fixture f;
  f.config.wait_poll = seconds(10);
  f.script_start();
  f.script_wait("1");
  f.transport.reply(200, "[]").reply(204).reply(204);  // workers, pause, our row's DELETE
  f.sleeper.on_sleep = [&](milliseconds) { f.signal(SIGTERM); };
  CHECK(f.run() == ExitCode::kTerminated);
  CHECK(f.clock.elapsed() == milliseconds(0));  // the wait's sleep was cut short
  CHECK(f.status_of("wait") == PhaseStatus::kInterrupted);
  CHECK(f.pauses() == 1);
  CHECK(f.summary.pool_paused_at_end == true);
  CHECK(f.summary.message == "stopped by SIGTERM");
  CHECK(f.summary.one_line().find("pool \"etl\" paused") != std::string::npos);
}

TEST_CASE("cycle end: the pause waits up to 10 s for the other workers of the pool", "[cycle]") {
  Fixture f;
  f.config.wait_poll = seconds(10);
  f.script_start();
  const std::string busy = "[" + worker_json("other", f.clock.wall_now()) + "]";

  SECTION("they finish within the 10 s: paused") {
    f.script_wait("0", busy);  // the wait's count came with the workers
    f.transport.reply(204);    // our row's DELETE: they may be waiting for us
    f.transport.reply(200, busy).reply(200, busy).reply(200, "[]");  // at 1, 2 and 3 s
    f.transport.reply(204).reply(200, kPool);  // the pause, read back (no row of ours)
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.sleeper.slept == std::vector<milliseconds>(3, seconds(1)));
    CHECK(f.said("other worker(s) of the pool are active (other): waiting up to 10 s"));
    CHECK(f.pauses() == 1);
    CHECK(f.summary.pool_paused_at_end == true);
  }
  SECTION("still active after 10 s: left resumed for them, and said so") {
    f.script_wait("0", busy);
    f.transport.reply(204);  // our row's DELETE
    for (int i = 0; i < 10; ++i) {
      f.transport.reply(200, busy);
    }
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.clock.elapsed() == seconds(10));
    CHECK(f.pauses() == 0);
    CHECK(f.summary.pool_left_resumed_for == "other");
    CHECK(f.summary.one_line().find("left resumed for active worker(s) other") !=
          std::string::npos);
    CHECK_FALSE(f.said("\" paused"));
  }
  SECTION("after a stop signal: not waited for") {
    f.during_worker = [&] { f.signal(SIGTERM); };
    f.transport.reply(200, busy).reply(204);  // the workers, once; our row's DELETE
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.clock.elapsed() == seconds(0));
    CHECK(f.pauses() == 0);
    CHECK(f.summary.pool_left_resumed_for == "other");
  }
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("cycle end: after SIGTERM the pause's tries keep their spacing", "[cycle]") {
  Fixture f;
  f.script_start();
  f.during_worker = [&] { f.signal(SIGTERM); };  // SIGTERM while the runs execute
  f.transport.reply(200, "[]");                  // the other workers

  SECTION("a 500 twice: tried again 1 s and 2 s later") {
    f.transport.reply(500).reply(500).reply(204).reply(204);  // then our row's DELETE
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.sleeper.slept == std::vector<milliseconds>{seconds(1), seconds(2)});
    CHECK(f.clock.elapsed() == seconds(3));
    CHECK(f.pauses() == 3);
    CHECK(f.summary.pool_paused_at_end == true);
    CHECK(f.said("pausing failed (attempt 1 of 3, next in 1.0 s)"));
    CHECK(f.said("pausing failed (attempt 2 of 3, next in 2.0 s)"));
    CHECK(f.said("work pool \"etl\" paused"));
    CHECK(f.transport.pending() == 0);
  }
  SECTION("a 502 for 2.5 s: the client's own retries wait through the stop") {
    f.transport.reply(502).reply(502).reply(204).reply(204);
    CHECK(f.run() == ExitCode::kTerminated);
    REQUIRE(f.sleeper.slept.size() == 2);
    CHECK(f.clock.elapsed() >= milliseconds(2700));  // 1 s and 2 s, ±10 % jitter
    CHECK(f.pauses() == 3);
    CHECK(f.summary.pool_paused_at_end == true);
    CHECK_FALSE(f.said("stop signal arrived"));
    CHECK(f.transport.pending() == 0);
  }
  SECTION("a 502 for ever: all tries within 15 s, and no line says it was paused") {
    for (int i = 0; i < 40; ++i) {
      f.transport.reply(502);
    }
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.clock.elapsed() <= seconds(15));
    CHECK(f.clock.elapsed() >= seconds(10));
    // The client's retries 1 s, 2 s, 4 s … (±10 % jitter) apart, then the
    // tries 1 s and 2 s apart, each with what is left of the 15 s.
    CHECK(f.pauses() >= 5);
    CHECK(f.sleeper.slept.size() == static_cast<std::size_t>(f.pauses() - 1));
    CHECK(f.summary.pool_paused_at_end == false);
    CHECK(f.summary.one_line().find("pool \"etl\" MAY STILL BE RESUMED") != std::string::npos);
    CHECK(f.said("could not pause work pool \"etl\": it MAY STILL BE RESUMED"));
    CHECK_FALSE(f.said("paused\n"));
    CHECK_FALSE(f.said("the pool was paused"));
    CHECK(f.transport.pending() > 0);  // stopped trying before the fault ended
  }
}

TEST_CASE("cycle end: a second signal hurries the pause to one short try", "[cycle]") {
  Fixture f;
  f.script_start();
  f.during_worker = [&] { f.signal(SIGTERM); };
  f.transport.reply(200, "[]");

  SECTION("during the spacing of the tries: one more, short, try") {
    f.transport.reply(500).reply(500).reply(204);  // then our row's DELETE
    f.sleeper.on_sleep = [&](milliseconds) { f.signal(SIGTERM); };
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.pauses() == 2);
    CHECK(f.clock.elapsed() == seconds(0));  // the 1 s was cut short
    CHECK(f.summary.pool_paused_at_end == false);
  }
  SECTION("during the client's retries: they end") {
    f.transport.reply(502).reply(500).reply(204);
    f.sleeper.on_sleep = [&](milliseconds) {
      if (f.signals == 1) {
        f.signal(SIGTERM);
      }
    };
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.said("not retried: a second stop signal asked to hurry"));
    CHECK(f.pauses() == 2);  // the first try's retry was cut; one short try
    CHECK(f.summary.pool_paused_at_end == false);
  }
  SECTION("before the pause: one try of at most 5 s") {
    f.during_worker = [&] {
      f.signal(SIGTERM);
      f.signal(SIGTERM);
    };
    f.transport.reply(500).reply(204);
    CHECK(f.run() == ExitCode::kTerminated);
    CHECK(f.pauses() == 1);
    CHECK(f.sleeper.slept.empty());
    CHECK(f.summary.pool_paused_at_end == false);
  }
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("cycle end: our worker row goes after the pause, not before", "[cycle]") {
  Fixture f;
  f.script_start();
  f.script_wait("0");
  f.transport.reply(204).reply(204);  // the pause, our row's DELETE: no read back
  CHECK(f.run() == ExitCode::kOk);
  REQUIRE(f.transport.requests.size() == 7);
  CHECK(f.transport.requests[5].method == "PATCH");
  CHECK(f.transport.requests[6].method == "DELETE");
  CHECK(f.transport.requests[6].url == "http://h/api/work_pools/etl/workers/w");
  CHECK(f.transport.pending() == 0);
}

TEST_CASE("cycle end: the summary is told while our row's DELETE is in flight", "[cycle]") {
  {
    Fixture g;
    g.script_start();
    g.script_wait("0");
    g.transport.reply(204).reply(204).reply(204);
    bool told = false;
    CycleDeps deps{g.client,
                   g.clock,
                   g.sleeper,
                   [](const Logger&) { return PreflightReport{}; },
                   [&g](const WorkPool&, const PreflightReport&, WorkerHooks) {
                     return std::make_unique<ScriptedWorker>(nullptr, g.worker_result);
                   },
                   [] { return 0; },
                   [] { return false; },
                   [&](const CycleSummary& s) {
                     told = true;
                     CHECK(s.pool_paused_at_end == true);
                     CHECK(g.api.in_flight() == 1);  // the DELETE
                     g.client.write({"POST", "/events", nlohmann::json::array()}, {});
                   }};
    CHECK(run_cycle(g.config, g.log, deps, g.summary) == ExitCode::kOk);
    CHECK(told);
    CHECK(g.api.in_flight() == 0);
  }
}

TEST_CASE("cycle end: a pause the Foreman overwrote with NOT_READY is made again", "[cycle]") {
  Fixture f;
  // No row of ours (Prefect's worker CLI, or a worker that ended long
  // ago): the pause is read back.
  f.worker_result.registered = false;
  f.script_start();
  f.script_wait("0");
  f.transport.reply(204);  // the pause
  const char* overwritten =
      R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"NOT_READY"})";

  SECTION("read back NOT_READY: paused again, then PAUSED") {
    f.transport.reply(200, overwritten).reply(204).reply(200, kPool);
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.pauses() == 2);
    CHECK(f.said("its status is not PAUSED"));
  }
  SECTION("read back resumed (a cycle starting): left alone") {
    f.transport.reply(
        200, R"({"id":"p1","name":"etl","type":"process","is_paused":false,"status":"READY"})");
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.pauses() == 1);
  }
  SECTION("the read back fails: the pause was answered, the cycle goes on") {
    f.transport.reply(500);  // not retried by the client
    CHECK(f.run() == ExitCode::kOk);
    CHECK(f.pauses() == 1);
  }
  CHECK(f.summary.pool_paused_at_end == true);
  CHECK(f.transport.pending() == 0);
}
