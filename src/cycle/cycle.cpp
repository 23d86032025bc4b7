#include "cycle/cycle.hpp"

#include <signal.h>

#include <algorithm>
#include <set>

#include "common/error.hpp"
#include "worker/job_config.hpp"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

std::string format_seconds(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

// Thrown inside a phase when a stop signal arrives; turns into 130/143.
struct Stopped {};

class CycleRun {
 public:
  CycleRun(const Config& config, const Logger& log, CycleDeps& deps, CycleSummary& summary)
      : config_(config), log_(log), deps_(deps), summary_(summary) {}

  ExitCode run() {
    summary_.pool = config_.work_pool;
    summary_.worker_name = config_.worker_name;
    summary_.started_at = std::chrono::system_clock::now();
    const auto start = Clock::now();
    for (const auto& warning : config_.warnings) {
      log_.warn(warning);
    }

    ExitCode code = ExitCode::kOk;
    try {
      phase("preflight", [&] { preflight(); });
      phase("resume", [&] { resume(); });
      phase("trigger", [&] { trigger(); });
      phase("worker", [&] { work(); });
      phase("wait", [&] { wait(); });
    } catch (const Stopped&) {
      code = deps_.stop_signal() == SIGINT ? ExitCode::kInterrupted : ExitCode::kTerminated;
      summary_.message =
          "stopped by " + std::string(code == ExitCode::kInterrupted ? "SIGINT" : "SIGTERM");
    } catch (const Error& e) {
      // The phase's "failed" line has said it already.
      code = e.code();
      summary_.message = e.what();
    } catch (const std::exception& e) {
      // A bug of ours or the machine (bad_alloc, a system_error): the pool
      // must still be paused, so it ends the phases like any failure.
      code = ExitCode::kApi;
      summary_.message = std::string("internal error: ") + e.what();
    }
    // A signal that arrived during a phase which then failed still decides.
    if (deps_.stop_signal() != 0 && code != ExitCode::kUsage) {
      code = deps_.stop_signal() == SIGINT ? ExitCode::kInterrupted : ExitCode::kTerminated;
    }

    phase_always("pause", [&] { pause(); });
    if (summary_.pool_paused_at_end == false &&
        (code == ExitCode::kOk || code == ExitCode::kRunsFailed)) {
      code = ExitCode::kApi;
    }
    collect_runs();
    if (code == ExitCode::kOk && any_run_failed()) {
      code = ExitCode::kRunsFailed;
      summary_.message = "at least one flow run failed or crashed";
    }
    summary_.exit_code = code;
    summary_.duration = since(start);
    return code;
  }

 private:
  // Runs one phase with start/end log lines and a summary record. Skipped
  // entirely once a stop signal has arrived.
  template <typename F>
  void phase(const std::string& name, F&& body) {
    if (deps_.stop_signal() != 0) {
      summary_.phases.push_back({name, PhaseStatus::kSkipped, {}, "stop signal"});
      throw Stopped{};
    }
    run_phase(name, std::forward<F>(body));
  }

  template <typename F>
  void phase_always(const std::string& name, F&& body) {
    try {
      run_phase(name, std::forward<F>(body));
    } catch (const Stopped&) {
    } catch (const std::exception&) {
      // Recorded as the phase's "failed" line.
    }
  }

  template <typename F>
  void run_phase(const std::string& name, F&& body) {
    Logger plog = log_.with({{"phase", name}});
    plog.info("phase started");
    const auto start = Clock::now();
    current_status_ = PhaseStatus::kOk;
    current_message_.clear();
    try {
      body();
    } catch (const Stopped&) {
      record(plog, name, PhaseStatus::kInterrupted, since(start), "stop signal");
      throw;
    } catch (const Error& e) {
      record(plog, name, PhaseStatus::kFailed, since(start), e.what());
      throw;
    } catch (const std::exception& e) {
      record(plog, name, PhaseStatus::kFailed, since(start),
             std::string("internal error: ") + e.what());
      throw;
    }
    record(plog, name, current_status_, since(start), current_message_);
  }

  void record(const Logger& plog, const std::string& name, PhaseStatus status,
              std::chrono::milliseconds duration, const std::string& message) {
    summary_.phases.push_back({name, status, duration, message});
    std::string line =
        "phase " + std::string(to_string(status)) + " in " + format_seconds(duration);
    if (!message.empty()) {
      line += ": " + message;
    }
    if (status == PhaseStatus::kFailed) {
      plog.error(line);
    } else {
      plog.info(line);
    }
  }

  void skip(const std::string& why) {
    current_status_ = PhaseStatus::kSkipped;
    current_message_ = why;
  }

  void check_stop() const {
    if (deps_.stop_signal() != 0) {
      throw Stopped{};
    }
  }

  // --- phases ---------------------------------------------------------------

  void preflight() {
    auto pool = deps_.client.read_work_pool(config_.work_pool);
    if (!pool && config_.work_pool_create) {
      log_.info("work pool \"" + config_.work_pool + "\" not found: creating it (type process)");
      pool = deps_.client.create_work_pool(config_.work_pool, "process",
                                           default_process_job_template());
    }
    if (!pool) {
      throw usage_error("PREFECT_WORK_POOL: work pool \"" + config_.work_pool + "\" not found at " +
                            config_.api_url,
                        Hint::kPoolNotFound);
    }
    pool_ = *pool;
    if (config_.worker_type == "process" && pool_.type != "process") {
      throw usage_error("work pool \"" + pool_.name + "\" is of type \"" + pool_.type +
                            "\" but PREFECT_WORKER_TYPE is \"process\": the native worker runs "
                            "process pools only",
                        Hint::kPoolType);
    }
    log_.info("work pool \"" + pool_.name + "\": type " + pool_.type + ", " +
              (pool_.is_paused ? "paused" : "not paused") + ", status " + pool_.status);

    for (const auto& ref : config_.trigger_deployments) {
      auto deployment = deps_.client.read_deployment_by_name(ref.flow, ref.deployment);
      if (!deployment) {
        throw usage_error("PREFECT_TRIGGER_DEPLOYMENTS: deployment \"" + ref.full_name() +
                              "\" not found at " + config_.api_url,
                          Hint::kDeploymentNotFound);
      }
      if (!deployment->work_pool_name.empty() && deployment->work_pool_name != pool_.name) {
        log_.warn("deployment \"" + ref.full_name() + "\" belongs to work pool \"" +
                  deployment->work_pool_name + "\", not \"" + pool_.name +
                  "\": this cycle will trigger it but not run it");
      }
      deployments_.push_back(*deployment);
    }

    preflight_ = deps_.preflight(log_.with({{"phase", "preflight"}}));
    if (!preflight_.ran) {
      skip("no repository, code directory or database check configured");
    }
    check_quiet();
  }

  // An empty cycle changes nothing on the server: with nothing to trigger,
  // no run due and none active (a killed cycle's runs count as active, so
  // they are recovered), a run-once cycle that would pause at the end does
  // not resume the pool at all. Two reads prove it; a cron every minute on an
  // idle pool leaves no resume/pause pair, worker row or event behind.
  void check_quiet() {
    if (!config_.trigger_deployments.empty() || config_.run_forever || config_.drain ||
        config_.auto_pause == AutoPause::kOff) {
      return;
    }
    remember_due_runs();
    if (!tracked_ids_.empty()) {
      return;
    }
    FlowRunFilter active;
    active.work_pool_names = {config_.work_pool};
    active.state_types = config_.active_state_types;
    if (deps_.client.count_flow_runs(active) != 0) {
      return;
    }
    quiet_ = true;
    worker_registered_ = false;
    if (pool_.is_paused) {
      summary_.pool_paused_at_end = true;
      log_.info("nothing to do: no flow run due or active in pool \"" + pool_.name +
                "\"; the pool stays paused and nothing is changed on the server");
    } else {
      resume_attempted_ = true;  // it is resumed: pause() pauses it as usual
      log_.info("nothing to do: no flow run due or active in pool \"" + pool_.name +
                "\"; pausing it (it was not paused)");
    }
  }

  static constexpr const char* kQuiet = "nothing due or active";

  void resume() {
    if (quiet_) {
      skip(kQuiet);
      return;
    }
    resume_attempted_ = true;
    deps_.client.set_work_pool_paused(config_.work_pool, false);
    summary_.pool_resumed = true;
    log_.info("work pool \"" + config_.work_pool + "\" resumed");
  }

  void trigger() {
    if (quiet_) {
      skip(kQuiet);
      return;
    }
    if (deployments_.empty()) {
      skip("PREFECT_TRIGGER_DEPLOYMENTS is empty");
      return;
    }
    for (std::size_t i = 0; i < deployments_.size(); ++i) {
      check_stop();
      const auto& ref = config_.trigger_deployments[i];
      // The key makes a retried request (its answer lost after the server
      // created the run) return that run instead of creating a second one.
      nlohmann::json body{{"state", {{"type", "SCHEDULED"}}},
                          {"idempotency_key", "prefect-cycle-" + new_uuid4()}};
      FlowRun run = deps_.client.create_flow_run_from_deployment(deployments_[i].id, body);
      summary_.triggered_run_ids.push_back(run.id);
      tracked_ids_.insert(run.id);
      log_.info("triggered \"" + ref.full_name() + "\": flow run " + run.name + " (" + run.id +
                ")");
    }
  }

  void work() {
    if (quiet_) {
      skip(kQuiet);
      return;
    }
    if (!due_read_) {
      remember_due_runs();
    }
    if (config_.wait_timeout.count() > 0) {
      wait_deadline_ = Clock::now() + config_.wait_timeout;
    }
    auto stop_reason = [this]() -> std::string {
      if (int sig = deps_.stop_signal(); sig != 0) {
        return sig == SIGINT ? "SIGINT received" : "SIGTERM received";
      }
      if (deadline_passed()) {
        return "wait timeout of " + std::to_string(config_.wait_timeout.count()) +
               " s reached (PREFECT_WAIT_TIMEOUT_SECONDS)";
      }
      return "";
    };
    auto worker = deps_.make_worker(pool_, preflight_, stop_reason);
    WorkerPhaseResult result = worker->run(log_.with({{"phase", "worker"}}));
    worker_registered_ = result.registered;
    for (auto& run : result.runs) {
      tracked_ids_.insert(run.id);
    }
    check_stop();
    if (deadline_passed()) {
      throw Error(ExitCode::kWaitTimeout,
                  "wait timed out after " + std::to_string(config_.wait_timeout.count()) +
                      " s (PREFECT_WAIT_TIMEOUT_SECONDS) while the worker was still running its "
                      "flow runs; the worker was stopped",
                  Hint::kWaitTimeout);
    }
    if (result.failure) {
      throw Error(*result.failure, result.failure_message, result.failure_hint);
    }
  }

  bool deadline_passed() const { return wait_deadline_ && Clock::now() >= *wait_deadline_; }

  // The runs of the pool that are due now: those the worker is expected to
  // take. They are the runs the summary accounts for.
  void remember_due_runs() {
    due_read_ = true;
    const auto horizon = std::chrono::system_clock::now() + config_.prefetch;
    FlowRunFilter filter;
    filter.work_pool_names = {config_.work_pool};
    filter.state_types = {StateType::kScheduled};
    for (int page = 0; page < 50; ++page) {
      filter.offset = page * filter.limit;
      auto runs = deps_.client.read_flow_runs(filter);
      for (const auto& run : runs) {
        auto due = parse_iso8601(run.expected_start_time);
        bool in_queue = config_.work_queues.empty() ||
                        std::find(config_.work_queues.begin(), config_.work_queues.end(),
                                  run.work_queue_name) != config_.work_queues.end();
        if (in_queue && (!due || *due <= horizon)) {
          tracked_ids_.insert(run.id);
        }
      }
      if (static_cast<int>(runs.size()) < filter.limit) {
        break;
      }
    }
    log_.info(std::to_string(tracked_ids_.size()) + " flow run(s) due in pool \"" +
              config_.work_pool + "\" (including triggered ones)");
  }

  void wait() {
    if (quiet_) {
      skip(kQuiet);
      return;
    }
    if (!config_.wait_for_completion) {
      skip("PREFECT_WAIT_FOR_COMPLETION is off");
      return;
    }
    const auto start = Clock::now();
    const bool bounded = wait_deadline_.has_value();
    const auto deadline = wait_deadline_.value_or(start);
    FlowRunFilter filter;
    filter.work_pool_names = {config_.work_pool};
    filter.state_types = config_.active_state_types;
    int failures = 0;  // in a row
    while (true) {
      check_stop();
      std::int64_t active = 0;
      try {
        active = deps_.client.count_flow_runs(filter);
        failures = 0;
      } catch (const Error& e) {
        // One bad answer (a 500, a malformed body) does not end the wait:
        // the count is asked again, up to three failures in a row.
        if (++failures >= 3 || (bounded && Clock::now() >= deadline)) {
          throw;
        }
        log_.warn("could not count the active flow runs (failure " + std::to_string(failures) +
                  " of 3), asking again in 1 s: " + e.what());
        if (!deps_.sleeper.sleep_for(std::chrono::seconds(1))) {
          check_stop();
        }
        continue;
      }
      const auto elapsed = since(start);
      if (active == 0) {
        log_.info("no active flow runs in pool \"" + config_.work_pool + "\" after " +
                  format_seconds(elapsed));
        return;
      }
      if (bounded && Clock::now() >= deadline) {
        throw Error(ExitCode::kWaitTimeout,
                    "wait timed out after " + std::to_string(config_.wait_timeout.count()) +
                        " s (PREFECT_WAIT_TIMEOUT_SECONDS) with " + std::to_string(active) +
                        " flow run(s) still active in pool \"" + config_.work_pool + "\"",
                    Hint::kWaitTimeout);
      }
      std::string progress = std::to_string(active) + " active flow run(s) in pool \"" +
                             config_.work_pool + "\"; waited " + format_seconds(elapsed);
      auto pause_for = std::chrono::duration_cast<std::chrono::milliseconds>(config_.wait_poll);
      if (bounded) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        progress += ", " + format_seconds(left) + " left";
        pause_for = std::max(std::chrono::milliseconds(0), std::min(pause_for, left));
      }
      log_.info(progress);
      if (!deps_.sleeper.sleep_for(pause_for)) {
        check_stop();
      }
    }
  }

  // Throws when the pool may still be resumed (summary_.pool_paused_at_end = false).
  void pause() {
    if (!resume_attempted_) {
      skip(quiet_ ? "nothing due or active: the pool stayed paused" : "the pool was not resumed");
      return;
    }
    if (worker_registered_) {
      forget_own_worker();
    }
    if (config_.auto_pause == AutoPause::kOff) {
      skip("PREFECT_AUTO_PAUSE is off: the pool stays resumed");
      return;
    }
    if (config_.auto_pause == AutoPause::kOn) {
      auto others = wait_for_other_workers();
      if (!others.empty()) {
        summary_.pool_left_resumed_for = others;
        skip("other worker(s) of the pool are active (" + others +
             "): not pausing so as not to stop them; the last cycle to finish pauses "
             "(PREFECT_AUTO_PAUSE=force pauses anyway)");
        log_.warn(current_message_);
        return;
      }
    }
    RequestOptions options;
    // After a second signal the user wants out: one short try.
    options.deadline =
        deps_.hurry() ? std::chrono::milliseconds(5000) : std::chrono::milliseconds(120000);
    try {
      // Transient answers are retried by the client; any other failure
      // (a 500, an unreadable answer) gets two more tries: this is the
      // request that must not be lost. Pausing twice is harmless.
      for (int attempt = 1;; ++attempt) {
        try {
          deps_.client.set_work_pool_paused(config_.work_pool, true, options);
          break;
        } catch (const Error& e) {
          if (attempt == 3 || deps_.hurry()) {
            throw;
          }
          log_.warn(std::string("pausing failed (attempt ") + std::to_string(attempt) +
                    " of 3): " + e.what());
          deps_.sleeper.sleep_for(std::chrono::seconds(attempt));
        }
      }
    } catch (const Error& e) {
      summary_.pool_paused_at_end = false;
      Error error(ExitCode::kApi,
                  std::string("could not pause work pool \"") + config_.work_pool +
                      "\": it MAY STILL BE RESUMED: " + e.message(),
                  Hint::kPauseFailed);

      if (summary_.message.empty()) {
        summary_.message = error.what();
      }
      throw error;
    }
    summary_.pool_paused_at_end = true;
    log_.info("work pool \"" + config_.work_pool + "\" paused");
  }

  // Our worker row goes away at the end, so that other cycles deciding
  // whether to pause do not count us as active.
  void forget_own_worker() {
    try {
      deps_.client.delete_worker(config_.work_pool, config_.worker_name);
    } catch (const Error& e) {
      log_.debug(std::string("could not delete our worker row: ") + e.what());
    }
  }

  // Names of other workers that heartbeated within their interval, after
  // waiting up to 10 s for them to finish (several cycles ending together).
  std::string wait_for_other_workers() {
    const auto give_up = Clock::now() + std::chrono::seconds(deps_.hurry() ? 0 : 10);
    bool logged = false;
    while (true) {
      std::string names;
      try {
        const auto now = std::chrono::system_clock::now();
        for (const auto& worker : deps_.client.read_workers(config_.work_pool)) {
          auto since = worker.since_heartbeat(now);
          if (worker.name != config_.worker_name && since &&
              *since < worker.heartbeat_interval() + std::chrono::seconds(5)) {
            names += (names.empty() ? "" : ", ") + worker.name;
          }
        }
      } catch (const Error& e) {
        log_.warn(std::string("could not list the pool's workers: ") + e.what());
        return "";
      }
      if (names.empty() || Clock::now() >= give_up || deps_.stop_signal() != 0) {
        return names;
      }
      if (!logged) {
        log_.info("other worker(s) of the pool are active (" + names +
                  "): waiting up to 10 s for them to finish before pausing");
        logged = true;
      }
      deps_.sleeper.sleep_for(std::chrono::milliseconds(1000));
    }
  }

  void collect_runs() {
    if (tracked_ids_.empty()) {
      return;
    }
    std::vector<std::string> ids(tracked_ids_.begin(), tracked_ids_.end());
    std::map<std::string, FlowRun> found;
    try {
      for (std::size_t i = 0; i < ids.size(); i += 200) {
        FlowRunFilter filter;
        filter.ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(i),
                          ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + 200)));
        for (auto& run : deps_.client.read_flow_runs(filter)) {
          found.emplace(run.id, std::move(run));
        }
      }
    } catch (const Error& e) {
      log_.warn(std::string("could not read the final states of the flow runs: ") + e.what());
    }
    for (const auto& id : ids) {
      RunRecord record{id, "", "UNKNOWN", "", ""};
      if (auto it = found.find(id); it != found.end()) {
        record.name = it->second.name;
        if (it->second.state) {
          record.state_type = std::string(to_string(it->second.state->type));
          record.state_name = it->second.state->name;
          record.message = it->second.state->message;
        }
      }
      summary_.runs.push_back(std::move(record));
    }
  }

  bool any_run_failed() const {
    return std::any_of(summary_.runs.begin(), summary_.runs.end(), [](const RunRecord& r) {
      return r.state_type == "FAILED" || r.state_type == "CRASHED";
    });
  }

  const Config& config_;
  const Logger& log_;
  CycleDeps& deps_;
  CycleSummary& summary_;

  WorkPool pool_;
  std::vector<Deployment> deployments_;
  PreflightReport preflight_;
  std::set<std::string> tracked_ids_;
  bool worker_registered_ = true;  // a worker row of ours may exist
  bool resume_attempted_ = false;
  bool quiet_ = false;     // nothing to do: see check_quiet()
  bool due_read_ = false;  // remember_due_runs() has run
  std::optional<Clock::time_point> wait_deadline_;
  PhaseStatus current_status_ = PhaseStatus::kOk;
  std::string current_message_;
};

}  // namespace

ExitCode run_cycle(const Config& config, const Logger& log, CycleDeps& deps,
                   CycleSummary& summary) {
  return CycleRun(config, log, deps, summary).run();
}

}  // namespace pc
