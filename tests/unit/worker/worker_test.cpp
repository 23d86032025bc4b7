#include "worker/worker.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/fake_clock.hpp"
#include "http/fake_transport.hpp"
#include "prefect/client.hpp"
#include "worker/fake_prefect.hpp"

using namespace pc;
using namespace pc::testing;
using json = nlohmann::json;

namespace {

// Processes that are not: records what it was asked to start
// (`started`, like ninja's FakeCommandRunner::commands_ran_); each process
// ends as `plan` says, on a later run_once(), which also moves the clock.
class FakeStarter : public ProcessStarter {
 public:
  struct Plan {
    int rounds = 1;  // run_once() rounds before it exits; 0 = until terminated
    ExitStatus status{0, 0};
    std::string spawn_error;
  };

  explicit FakeStarter(FakeClock& clock) : clock_(clock) {}

  // start() throws an Error with this message instead (when not empty).
  std::string start_error;

  // The plan for a flow run's process, by flow run id; default: exit 0 at once.
  std::function<Plan(const std::string& flow_run_id)> plan;
  // Called when a process ends, before the worker hears of it: the "engine"
  // reporting its final state, by flow run id.
  std::function<void(const std::string& flow_run_id, const ExitStatus&)> on_end;

  Started start(const SpawnOptions& options, LineCallback on_line, ExitCallback on_exit) override {
    started.push_back(options);
    const std::string run_id = options.env ? options.env->at("PREFECT__FLOW_RUN_ID") : "";
    Process p{run_id, plan ? plan(run_id) : Plan{}, std::move(on_line), std::move(on_exit)};
    if (!start_error.empty()) {
      throw Error(ExitCode::kApi, start_error, Hint::kTempDir);
    }
    const Id id = next_id_++;
    Started s{id, p.plan.spawn_error.empty() ? 4242 + static_cast<pid_t>(id) : -1,
              p.plan.spawn_error};
    processes_.emplace(id, std::move(p));
    return s;
  }

  void run_once(std::chrono::milliseconds max_wait) override {
    clock_.advance(max_wait);
    std::vector<Id> ended;
    for (auto& [id, p] : processes_) {
      if (p.terminated || (p.plan.rounds > 0 && --p.plan.rounds == 0)) {
        ended.push_back(id);
      }
    }
    for (Id id : ended) {
      Process p = std::move(processes_.at(id));
      processes_.erase(id);
      const ExitStatus status = p.terminated ? ExitStatus{-1, 15} : p.plan.status;
      p.on_line("the flow's last line", false);
      if (on_end) {
        on_end(p.run_id, status);
      }
      p.on_exit(status);
    }
  }

  void terminate(Id id, std::chrono::milliseconds) override {
    if (auto it = processes_.find(id); it != processes_.end()) {
      it->second.terminated = true;
      terminated.push_back(it->second.run_id);
    }
  }

  bool empty() const override { return processes_.empty(); }

  std::vector<SpawnOptions> started;
  std::vector<std::string> terminated;  // flow run ids

 private:
  struct Process {
    std::string run_id;
    Plan plan;
    LineCallback on_line;
    ExitCallback on_exit;
    bool terminated = false;
  };
  FakeClock& clock_;
  std::map<Id, Process> processes_;
  Id next_id_ = 1;
};

// One worker over the fakes: `server`'s runs, `starter`'s processes, time
// from `clock` (sleeping moves it).
struct Harness : FakeApi {
  std::shared_ptr<FakeStarter> starter = std::make_shared<FakeStarter>(clock);
  Config config;
  std::string stop;                  // the cycle's stop reason, "" = go on
  std::function<void()> each_round;  // called whenever the worker asks for `stop`
  std::function<void()> last_lap;    // the cycle's last-lap hook

  Harness() {
    config.api_url = "http://h/api";
    config.work_pool = "etl";
    config.worker_name = "w";
    config.recover_stale_runs = false;
    // The engine: exit 0 completes a run, anything else fails it.
    starter->on_end = [this](const std::string& id, const ExitStatus& status) {
      if (server.type_of(id) == "PENDING" || server.type_of(id) == "RUNNING") {
        server.set_type(id, status.exited() && status.code == 0 ? "COMPLETED" : "FAILED");
      }
    };
  }

  WorkerPhaseResult run() {
    NativeWorkerOptions options;
    options.hostname = "h";
    options.default_working_dir = ".";
    options.hooks.stop_reason = [this] {
      if (each_round) {
        each_round();
      }
      return stop;
    };
    options.hooks.last_lap = last_lap;
    options.starter = starter;
    options.clock = &clock;
    WorkPool pool;
    pool.id = "p1";
    pool.name = "etl";
    NativeWorker worker(config, client, sleeper, pool, std::move(options));
    return worker.run(Logger::null());
  }

  // r1, r2 and r3 due, `limit` at once, over a far API (each started
  // request answered on the third look); run `id` lasts `rounds(id)`
  // supervision rounds and exits 0.
  void three_runs_far_away(int limit, const std::function<int(const std::string&)>& rounds) {
    for (const char* id : {"r1", "r2", "r3"}) {
      server.add_run(id);
    }
    config.flow_limit = limit;
    server.slow_starts = 3;
    starter->plan = [rounds](const std::string& id) {
      return FakeStarter::Plan{rounds(id), ExitStatus{0, 0}, ""};
    };
  }

  std::map<std::string, std::string> records(const WorkerPhaseResult& result) const {
    std::map<std::string, std::string> out;
    for (const auto& r : result.runs) {
      out[r.id] = r.state_type;
    }
    return out;
  }
};

json state_answer(const std::string& status, const std::string& type, json details = {}) {
  if (details.is_null()) {
    details = json::object();
  }
  json state{{"type", type}};
  if (status == "ACCEPT" && type == "PENDING") {
    state["state_details"] = {{"scheduled_time", "2026-12-01T00:00:00Z"}};  // from SCHEDULED
  }
  return {{"status", status}, {"state", state}, {"details", details}};
}

}  // namespace

TEST_CASE("NativeWorker: nothing due", "[worker]") {
  Harness h;
  auto result = h.run();
  CHECK(result.runs.empty());
  CHECK(h.starter->started.empty());
  // One empty poll may hide runs a neighbour's poll holds locked
  // (PostgreSQL), so a second one, 500 ms later, decides; the worker has
  // heartbeated by then.
  const auto polls = std::count_if(
      h.server.requests.begin(), h.server.requests.end(),
      [](const HttpRequest& r) { return ends_with(r.url, "/get_scheduled_flow_runs"); });
  CHECK(polls == 2);
  CHECK(h.clock.elapsed() >= std::chrono::milliseconds(500));
  CHECK(h.server.heartbeats == 1);
  CHECK(result.registered);
}

TEST_CASE("NativeWorker: claim answers", "[worker]") {
  Harness h;
  h.server.add_run("r1");

  SECTION("ACCEPT: launched, infrastructure_pid and labels recorded, COMPLETED") {
    auto result = h.run();
    REQUIRE(h.starter->started.size() == 1);
    const SpawnOptions& spawned = h.starter->started[0];
    CHECK(spawned.argv == std::vector<std::string>{"python3", "-m", "prefect.engine"});
    CHECK(spawned.env->at("PREFECT__FLOW_RUN_ID") == "r1");
    CHECK(spawned.env->at("PREFECT__WORKER_NAME") == "w");
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING"});
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
    CHECK(result.registered);
    CHECK(h.server.heartbeats >= 1);
    CHECK(std::count_if(h.server.patches.begin(), h.server.patches.end(), [](const auto& p) {
            return p.find(R"("infrastructure_pid":"h:4243")") != std::string::npos;
          }) == 1);
    CHECK(std::count_if(h.server.patches.begin(), h.server.patches.end(), [](const auto& p) {
            return p.rfind("/flow_runs/r1/labels ", 0) == 0 &&
                   p.find(R"("prefect-cycle.claimed-by":"w")") != std::string::npos;
          }) == 1);
  }

  SECTION("ACCEPT: the run's lines and events for Prefect's UI") {
    h.starter->plan = [](const std::string&) {
      return FakeStarter::Plan{2, ExitStatus{-1, 9}, ""};
    };
    h.run();
    REQUIRE(h.server.logs.size() >= 4);
    CHECK(h.server.logs[0] == "r1 Worker 'w' submitting flow run 'r1'");
    CHECK(h.server.logs[1].rfind("r1 Opened process 4243 for flow run 'run-r1' (cold", 0) == 0);
    CHECK(h.server.logs[2].rfind(
              "r1 Process for flow run 'run-r1' exited with status code: -9; Process exited due "
              "to a SIGKILL signal.",
              0) == 0);
    std::vector<std::string> names;
    for (const auto& e : h.server.events) {
      names.push_back(e["event"]);
    }
    CHECK(names ==
          std::vector<std::string>{"prefect.worker.started", "prefect.worker.submitted-flow-run",
                                   "prefect.worker.executed-flow-run", "prefect.worker.stopped"});
  }

  SECTION("Prefect 2.20: the lines, no event") {
    h.server.version = "2.20.27";
    h.run();
    CHECK_FALSE(h.server.logs.empty());
    CHECK(h.server.events.empty());
    for (const auto& r : h.server.requests) {
      CHECK_FALSE(ends_with(r.url, "/events"));
    }
  }

  SECTION("WAIT: the claim is proposed again after the delay, a timer of the loop") {
    h.server.on_set_state = [](const std::string&, const json&,
                               int nth) -> std::optional<HttpResponse> {
      if (nth == 1) {
        return answer(201, state_answer("WAIT", "SCHEDULED",
                                        {{"delay_seconds", 2.5}, {"reason", "limit reached"}}));
      }
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 PENDING"});
    CHECK(h.clock.elapsed() >= std::chrono::milliseconds(2500));
    // No sleep of the whole delay: the loop (other runs, heartbeats) goes on.
    CHECK(std::all_of(h.sleeper.slept.begin(), h.sleeper.slept.end(),
                      [](auto d) { return d <= std::chrono::milliseconds(100); }));
    CHECK(h.starter->started.size() == 1);
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
  }

  auto refused = [&](const std::string& status) {
    h.server.on_set_state = [status](const std::string&, const json&,
                                     int) -> std::optional<HttpResponse> {
      return answer(201, state_answer(status, "RUNNING", {{"reason", "another worker has it"}}));
    };
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING"});
    CHECK(h.starter->started.empty());
    CHECK(result.runs.empty());
    CHECK(h.server.patches.empty());
  };
  SECTION("ABORT: skipped, not launched, nothing reported") {
    refused("ABORT");
  }
  SECTION("REJECT: skipped, not launched, nothing reported") {
    refused("REJECT");
  }

  SECTION("a lost answer the server applied: the run is ours") {
    h.server.on_set_state = [&](const std::string& id, const json& state,
                                int nth) -> std::optional<HttpResponse> {
      if (nth == 1) {
        h.server.apply(id, state);  // applied, but the answer is unreadable
        return answer(201, json("not an orchestration result"));
      }
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING"});
    CHECK(h.starter->started.size() == 1);
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
  }

  SECTION("a lost answer the server did not apply: skipped") {
    h.server.on_set_state = [&](const std::string&, const json&,
                                int) -> std::optional<HttpResponse> {
      return answer(201, json("not an orchestration result"));
    };
    auto result = h.run();
    CHECK(h.starter->started.empty());
    CHECK(result.runs.empty());
  }

  SECTION("accepted after another worker ran the run: not launched, its state set again") {
    // Prefect accepts PENDING from COMPLETED (a rerun): our claim, held by
    // a busy server, arrives after another worker claimed, ran and ended it.
    h.server.on_set_state = [&](const std::string& id, const json& state,
                                int nth) -> std::optional<HttpResponse> {
      if (nth == 1) {
        h.server.apply(id, {{"type", "PENDING"}, {"state_details", json::object()}});
        h.server.apply(id, {{"type", "RUNNING"}});
        h.server.apply(id, {{"type", "COMPLETED"}, {"name", "Completed"}, {"message", "done"}});
        h.server.apply(id, state);  // from COMPLETED: no scheduled_time
        return answer(201, {{"status", "ACCEPT"},
                            {"state", h.server.run(id)["state"]},
                            {"details", json::object()}});
      }
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.starter->started.empty());
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 COMPLETED forced"});
    CHECK(h.server.type_of("r1") == "COMPLETED");
    CHECK(h.server.run("r1")["state"]["message"] == "done");
    CHECK(result.runs.empty());
  }

  SECTION("no longer SCHEDULED when re-read: not proposed") {
    // Another worker took it between our poll and our re-read.
    h.server.before = [&](const std::string&, const std::string& path) {
      if (path == "/flow_runs/filter" && h.server.type_of("r1") == "SCHEDULED") {
        h.server.set_type("r1", "RUNNING");
      }
    };
    auto result = h.run();
    CHECK(h.server.proposals.empty());
    CHECK(h.starter->started.empty());
    CHECK(result.runs.empty());
  }
}

TEST_CASE("NativeWorker: reads that need not wait for each other go together", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  h.config.recover_stale_runs = true;

  auto result = h.run();

  // The stale-run check's read with the first poll.
  const std::set<std::string> start{"POST /flow_runs/filter",
                                    "POST /work_pools/etl/get_scheduled_flow_runs"};
  REQUIRE_FALSE(h.server.batches.empty());
  CHECK(h.server.batches.front() == start);
  // In flight together: the run again and the server's version (the run has
  // no deployment or flow to look up), with the first heartbeat; the claim
  // only after them.
  const auto lookups = std::find_if(
      h.server.started_together.begin(), h.server.started_together.end(), [](const auto& group) {
        return group.count("POST /flow_runs/filter") == 1 && group.count("GET /admin/version") == 1;
      });
  REQUIRE(lookups != h.server.started_together.end());
  CHECK(lookups->count("POST /work_pools/etl/workers/heartbeat") == 1);
  CHECK(lookups->count("POST /flow_runs/r1/set_state") == 0);
  CHECK(std::count(h.server.started_paths.begin(), h.server.started_paths.end(),
                   "GET /admin/version") == 1);
  CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
}

TEST_CASE("NativeWorker: batch answers go to their own runs", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  h.server.add_run("r2");
  h.server.add_run("r3");

  SECTION("one of three proposals ABORTed") {
    h.server.on_set_state = [](const std::string& id, const json&,
                               int) -> std::optional<HttpResponse> {
      if (id == "r2") {
        return answer(201, state_answer("ABORT", "PENDING", {{"reason", "claimed elsewhere"}}));
      }
      return std::nullopt;
    };
    h.starter->plan = [](const std::string& id) {
      return id == "r3" ? FakeStarter::Plan{2, ExitStatus{1, 0}, ""} : FakeStarter::Plan{};
    };
    auto result = h.run();
    REQUIRE(h.starter->started.size() == 2);
    CHECK(h.starter->started[0].env->at("PREFECT__FLOW_RUN_ID") == "r1");
    CHECK(h.starter->started[1].env->at("PREFECT__FLOW_RUN_ID") == "r3");
    CHECK(h.records(result) ==
          std::map<std::string, std::string>{{"r1", "COMPLETED"}, {"r3", "FAILED"}});
    CHECK(h.server.type_of("r2") == "SCHEDULED");
  }

  SECTION("answered out of order: a limit of one lets the first to arrive in") {
    h.server.reverse_batches = true;
    bool taken = false;
    h.server.on_set_state = [&](const std::string&, const json& state,
                                int) -> std::optional<HttpResponse> {
      if (state["type"] != "PENDING") {
        return std::nullopt;
      }
      if (taken) {
        return answer(201, state_answer("ABORT", "SCHEDULED", {{"reason", "limit of 1"}}));
      }
      taken = true;
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r3 PENDING", "r2 PENDING", "r1 PENDING"});
    REQUIRE(h.starter->started.size() == 1);
    CHECK(h.starter->started[0].env->at("PREFECT__FLOW_RUN_ID") == "r3");
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r3", "COMPLETED"}});
    CHECK(h.server.type_of("r1") == "SCHEDULED");
    CHECK(h.server.type_of("r2") == "SCHEDULED");
  }
}

TEST_CASE("NativeWorker: after the process ends", "[worker]") {
  Harness h;
  h.server.add_run("r1");

  SECTION("exit 1 and the run still RUNNING: CRASHED proposed with the exit status") {
    h.starter->plan = [](const std::string&) { return FakeStarter::Plan{1, ExitStatus{1, 0}, ""}; };
    h.starter->on_end = [&](const std::string& id, const ExitStatus&) {
      h.server.set_type(id, "RUNNING");  // the engine died before reporting
    };
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 CRASHED"});
    CHECK(h.server.run("r1")["state"]["message"] ==
          "Flow run process exited with exit code 1 (general error).");
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CRASHED"}});
  }

  SECTION("the command cannot be started: CRASHED with the spawn error") {
    h.starter->plan = [](const std::string&) {
      return FakeStarter::Plan{1, ExitStatus{127, 0}, "cannot run \"python3\": not found"};
    };
    h.starter->on_end = nullptr;
    auto result = h.run();
    CHECK(h.server.run("r1")["state"]["message"] ==
          "Failed to submit flow run to infrastructure: cannot run \"python3\": not found.");
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CRASHED"}});
    CHECK(std::none_of(h.server.patches.begin(), h.server.patches.end(), [](const auto& p) {
      return p.find("infrastructure_pid") != std::string::npos;
    }));
  }

  SECTION("cancelled in Prefect: SIGTERM, then CANCELLED forced") {
    h.starter->plan = [](const std::string&) { return FakeStarter::Plan{0, {}, ""}; };
    h.starter->on_end = nullptr;
    // The user cancels the run 3 s after its start; the worker looks every 10 s.
    h.each_round = [&] {
      if (h.clock.elapsed() >= std::chrono::seconds(3) && h.server.type_of("r1") == "PENDING") {
        h.server.set_type("r1", "CANCELLING");
      }
    };
    auto result = h.run();
    CHECK(h.starter->terminated == std::vector<std::string>{"r1"});
    CHECK(h.clock.elapsed() >= std::chrono::seconds(10));
    CHECK(h.clock.elapsed() < std::chrono::seconds(11));
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 CANCELLED forced"});
    CHECK(h.server.run("r1")["state"]["message"] ==
          "Cancelled: prefect-cycle stopped the process.");
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CANCELLED"}});
  }

  SECTION("SIGTERM to the cycle while the flow runs: SIGTERM, then CRASHED forced") {
    h.starter->plan = [](const std::string&) { return FakeStarter::Plan{0, {}, ""}; };
    h.starter->on_end = nullptr;
    h.server.on_set_state = [&](const std::string& id, const json& state,
                                int) -> std::optional<HttpResponse> {
      if (state["type"] == "PENDING") {
        h.server.apply(id, state);
        h.server.set_type(id, "RUNNING");  // the engine starts at once
        h.stop = "SIGTERM received";       // and the cycle gets a SIGTERM
        return answer(201, state_answer("ACCEPT", "PENDING"));
      }
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.starter->terminated == std::vector<std::string>{"r1"});
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 CRASHED forced"});
    CHECK(h.server.run("r1")["state"]["message"] ==
          "prefect-cycle stopped this flow run: SIGTERM received; the process was killed by "
          "signal 15 (SIGTERM).");
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CRASHED"}});
  }
}

TEST_CASE("NativeWorker: the cycle's last-lap hook, once the last process has ended", "[worker]") {
  Harness h;
  int told = 0;
  bool processes_left = true;
  h.last_lap = [&] {
    ++told;
    processes_left = !h.starter->empty();
  };

  SECTION("two runs: told once, after both ended") {
    h.server.add_run("r1");
    h.server.add_run("r2");
    h.config.flow_limit = 2;
    h.starter->plan = [](const std::string& id) {
      return FakeStarter::Plan{id == "r1" ? 1 : 3, ExitStatus{0, 0}, ""};
    };
    auto result = h.run();
    CHECK(told == 1);
    CHECK_FALSE(processes_left);
    CHECK(h.records(result) ==
          std::map<std::string, std::string>{{"r1", "COMPLETED"}, {"r2", "COMPLETED"}});
  }
  SECTION("nothing due after all (another worker took the runs): told at the second empty poll") {
    h.run();
    CHECK(told == 1);
  }
  SECTION("stopped by the cycle (a signal): not told, the cycle does not wait") {
    h.server.add_run("r1");
    h.starter->plan = [](const std::string&) { return FakeStarter::Plan{0, {}, ""}; };
    h.starter->on_end = nullptr;
    h.each_round = [&] {
      if (h.clock.elapsed() >= std::chrono::seconds(2)) {  // after the poll that found no more
        h.stop = "SIGTERM received";
      }
    };
    h.run();
    CHECK(h.starter->terminated == std::vector<std::string>{"r1"});
    CHECK(told == 0);
  }
}

TEST_CASE("NativeWorker: processes that end together are reported together", "[worker]") {
  Harness h;
  for (const char* id : {"r1", "r2", "r3"}) {
    h.server.add_run(id);
  }
  h.config.flow_limit = 3;
  // r1 completes; r2 and r3 die before their engine reports (RUNNING).
  h.starter->on_end = [&](const std::string& id, const ExitStatus&) {
    h.server.set_type(id, id == "r1" ? "COMPLETED" : "RUNNING");
  };
  h.starter->plan = [](const std::string& id) {
    return FakeStarter::Plan{1, ExitStatus{id == "r1" ? 0 : 1, 0}, ""};
  };
  std::size_t first_report = 0;
  h.server.before = [&](const std::string& method, const std::string& path) {
    if (first_report == 0 && method == "POST" && path == "/flow_runs/filter" &&
        h.starter->empty() && h.starter->started.size() == 3) {
      first_report = h.server.requests.size();  // the read after the exits
    }
  };

  auto result = h.run();

  REQUIRE(first_report > 0);
  std::vector<std::string> after;
  for (std::size_t i = first_report - 1; i < h.server.requests.size(); ++i) {
    const auto& r = h.server.requests[i];
    after.push_back(r.method + " " + r.url.substr(r.url.find("/api") + 4));
  }
  // One read of the three, the two proposals, then the worker's last poll:
  // no read of a run one by one.
  REQUIRE(after.size() >= 3);
  CHECK(after[0] == "POST /flow_runs/filter");
  CHECK(std::set<std::string>(after.begin() + 1, after.begin() + 3) ==
        std::set<std::string>{"POST /flow_runs/r2/set_state", "POST /flow_runs/r3/set_state"});
  CHECK(std::none_of(after.begin(), after.end(),
                     [](const std::string& r) { return r.rfind("GET /flow_runs/", 0) == 0; }));
  CHECK(h.records(result) == std::map<std::string, std::string>{
                                 {"r1", "COMPLETED"}, {"r2", "CRASHED"}, {"r3", "CRASHED"}});
}

TEST_CASE("NativeWorker: a failed label goes out again in flight, not as a stall", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  h.server.fail_patches = 1;  // the label: 503 once
  // Runs 3 s: the label's second try is due 1 s after the first.
  h.starter->plan = [](const std::string&) { return FakeStarter::Plan{30, ExitStatus{0, 0}, ""}; };

  auto result = h.run();

  // Both tries started (in flight), the second 1 s later: no sleep of the loop.
  CHECK(std::count(h.server.started_paths.begin(), h.server.started_paths.end(),
                   "PATCH /flow_runs/r1/labels") == 2);
  CHECK(std::all_of(h.sleeper.slept.begin(), h.sleeper.slept.end(),
                    [](auto d) { return d <= std::chrono::milliseconds(100); }));
  CHECK(std::count_if(h.server.patches.begin(), h.server.patches.end(),
                      [](const auto& p) { return p.rfind("/flow_runs/r1/labels ", 0) == 0; }) == 2);
  CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
}

TEST_CASE("NativeWorker: a failed first heartbeat holds the claims until one succeeds",
          "[worker]") {
  // Without a worker row, a cycle killed mid-run leaves runs that no other
  // host can judge stale: the claims wait for the row (a busy SQLite server
  // answers 503 now and then).
  Harness h;
  h.server.add_run("r1");
  std::vector<std::string> order;
  int heartbeats = 0;
  h.server.before = [&](const std::string&, const std::string& path) {
    if (ends_with(path, "/workers/heartbeat")) {
      order.push_back(++heartbeats == 1 ? "heartbeat 503" : "heartbeat");
    } else if (ends_with(path, "/set_state")) {
      order.push_back("claim");
    }
  };
  h.server.fail_heartbeats = 1;
  auto result = h.run();
  REQUIRE(order.size() >= 3);
  CHECK(order[0] == "heartbeat 503");
  CHECK(order[1] == "heartbeat");
  CHECK(order[2] == "claim");
  CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
}

TEST_CASE("NativeWorker: the first heartbeat is answered before the first claim", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  h.server.slow_starts = 3;  // the heartbeat, started, is answered on the 3rd look
  std::vector<std::string> order;
  h.server.before = [&](const std::string& method, const std::string& path) {
    if (ends_with(path, "/workers/heartbeat")) {
      order.push_back("heartbeat");
    } else if (method == "POST" && ends_with(path, "/set_state")) {
      order.push_back("claim");
    }
  };

  h.run();

  REQUIRE(order.size() >= 2);
  CHECK(order[0] == "heartbeat");
  CHECK(order[1] == "claim");
}

TEST_CASE("NativeWorker: a run's report and another run's claim are in flight together",
          "[worker]") {
  Harness h;
  // r1 ends at once, r2 runs on, r3 waits for r1's slot.
  h.three_runs_far_away(2, [](const std::string& id) { return id == "r2" ? 40 : 1; });
  std::vector<std::string> in_flight_at_r3s_reread;
  h.server.on_start = [&](const std::string& label, const std::vector<std::string>& in_flight) {
    if (label == "POST /flow_runs/filter r3" && in_flight_at_r3s_reread.empty()) {
      in_flight_at_r3s_reread = in_flight;
    }
  };

  auto result = h.run();

  // r1's slot is taken again while r1's report (the read of its state after
  // the exit) is still on its way, and r2 is still supervised meanwhile.
  CHECK(std::count(in_flight_at_r3s_reread.begin(), in_flight_at_r3s_reread.end(),
                   "POST /flow_runs/filter r1") == 1);
  CHECK(h.records(result) == std::map<std::string, std::string>{
                                 {"r1", "COMPLETED"}, {"r2", "COMPLETED"}, {"r3", "COMPLETED"}});
}

TEST_CASE("NativeWorker: a stop while a claim is in flight", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  h.server.slow_starts = 3;  // the claim is still on its way when the stop comes
  h.starter->plan = [](const std::string&) { return FakeStarter::Plan{0, {}, ""}; };
  h.starter->on_end = nullptr;  // killed before its engine said anything: PENDING
  h.server.on_start = [&](const std::string& label, const std::vector<std::string>&) {
    if (label == "POST /flow_runs/r1/set_state" && h.server.type_of("r1") == "SCHEDULED") {
      h.stop = "SIGTERM received";
    }
  };

  auto result = h.run();

  // Accepted after the stop began: the run is ours, launched and stopped at
  // once, and handed back for the next cycle; it does not stay PENDING.
  CHECK(h.starter->terminated == std::vector<std::string>{"r1"});
  CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 SCHEDULED forced"});
  CHECK(h.server.type_of("r1") == "SCHEDULED");
  CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "SCHEDULED"}});
}

TEST_CASE("NativeWorker: runs that end while a report read is in flight go in the next one",
          "[worker]") {
  Harness h;
  // r1, r2 and r3 end one supervision round after another.
  h.three_runs_far_away(3, [](const std::string& id) {
    return id == "r1" ? 1 : id == "r2" ? 2 : 3;
  });
  std::vector<std::string> reads;
  h.server.on_start = [&](const std::string& label, const std::vector<std::string>&) {
    if (label.rfind("POST /flow_runs/filter r", 0) == 0 && !ends_with(label, " by state")) {
      reads.push_back(label);
    }
  };

  auto result = h.run();

  // The batch's re-read, r1's report read, then one read for r2 and r3,
  // which ended while r1's was on its way.
  CHECK(reads == std::vector<std::string>{"POST /flow_runs/filter r1,r2,r3",
                                          "POST /flow_runs/filter r1",
                                          "POST /flow_runs/filter r2,r3"});
  CHECK(h.records(result) == std::map<std::string, std::string>{
                                 {"r1", "COMPLETED"}, {"r2", "COMPLETED"}, {"r3", "COMPLETED"}});
}

// Calls that must not be lost are tried again as timers of the loop: no
// sleep of 1 s or 2 s in which no other run is supervised or claimed.
bool no_long_sleep(const Harness& h) {
  return std::all_of(h.sleeper.slept.begin(), h.sleeper.slept.end(),
                     [](auto d) { return d <= std::chrono::milliseconds(100); });
}

TEST_CASE("NativeWorker: calls that must not be lost are tried again on timers", "[worker]") {
  Harness h;
  h.server.add_run("r1");
  // The first `times` proposals of `type` answered 500.
  auto failing = [&](const std::string& type, int times) {
    h.server.on_set_state = [type, times, failed = 0](const std::string&, const json& state,
                                                      int) mutable -> std::optional<HttpResponse> {
      if (state["type"] == type && failed < times) {
        ++failed;
        return answer(500, {{"detail", "internal error"}});
      }
      return std::nullopt;
    };
  };

  SECTION("a final proposal: CRASHED tried three times, 1 s then 2 s apart") {
    h.starter->plan = [](const std::string&) { return FakeStarter::Plan{1, ExitStatus{1, 0}, ""}; };
    h.starter->on_end = [&](const std::string& id, const ExitStatus&) {
      h.server.set_type(id, "RUNNING");
    };
    failing("CRASHED", 2);
    auto result = h.run();
    CHECK(h.server.proposals ==
          std::vector<std::string>{"r1 PENDING", "r1 CRASHED", "r1 CRASHED", "r1 CRASHED"});
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CRASHED"}});
    CHECK(h.clock.elapsed() >= std::chrono::seconds(3));
    CHECK(no_long_sleep(h));
  }

  SECTION("the read after a lost claim: tried again, then the run is ours") {
    h.server.failing_run = "r1";
    h.server.on_set_state = [&](const std::string& id, const json& state,
                                int nth) -> std::optional<HttpResponse> {
      if (nth == 1) {
        h.server.apply(id, state);
        h.server.fail_reads_of = 2;  // the two first reads that would tell
        return answer(201, json("not an orchestration result"));
      }
      return std::nullopt;
    };
    auto result = h.run();
    CHECK(h.server.fail_reads_of == 0);
    CHECK(h.starter->started.size() == 1);
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
    CHECK(no_long_sleep(h));
  }

  SECTION("a launch that fails: CRASHED with the reason, its failed answer tried again") {
    h.starter->start_error = "cannot create the directory";
    failing("CRASHED", 1);
    auto result = h.run();
    CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING", "r1 CRASHED", "r1 CRASHED"});
    CHECK(h.server.run("r1")["state"]["message"].get<std::string>().rfind(
              "Failed to submit flow run to infrastructure: cannot create the directory; fix: ",
              0) == 0);
    CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "CRASHED"}});
    CHECK(no_long_sleep(h));
  }

  SECTION("a run whose deployment is gone: CANCELLED forced, not launched") {
    h.server.set_deployment("r1", "d1");
    failing("CANCELLED", 1);
    auto result = h.run();
    CHECK(h.server.proposals ==
          std::vector<std::string>{"r1 CANCELLED forced", "r1 CANCELLED forced"});
    CHECK(h.server.type_of("r1") == "CANCELLED");
    CHECK(h.starter->started.empty());
    CHECK(result.runs.empty());
    CHECK(no_long_sleep(h));
  }
}

TEST_CASE("NativeWorker: a claim the transport could not start is tried again, not lost",
          "[worker]") {
  // libcurl refused the request (no easy handle): HttpTransport::start threw.
  // The attempt fails like a transport error and is retried; before, the
  // exception left the run counted as being claimed, and the wait for the
  // worker's runs after the failure never ended.
  Harness h;
  h.server.add_run("r1");
  h.starter->plan = [](const std::string&) { return FakeStarter::Plan{1, ExitStatus{0, 0}, ""}; };
  int refused = 0;
  h.server.on_start = [&](const std::string& label, const std::vector<std::string>&) {
    if (label == "POST /flow_runs/r1/set_state" && refused++ == 0) {
      throw TransportError("cannot start a request with libcurl's multi interface", false);
    }
  };

  auto result = h.run();

  CHECK(refused == 2);
  CHECK(h.server.proposals == std::vector<std::string>{"r1 PENDING"});
  CHECK(h.records(result) == std::map<std::string, std::string>{{"r1", "COMPLETED"}});
}
