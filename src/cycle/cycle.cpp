#include "cycle/cycle.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "common/error.hpp"
#include "cycle/cycle_run.hpp"
#include "cycle/plan_reads.hpp"
#include "job_config/default_template.hpp"

namespace pc {
namespace cycle_detail {

ExitCode CycleRun::run() {
  summary_.pool = config_.work_pool;
  summary_.worker_name = config_.worker_name;
  summary_.started_at = deps_.clock.wall_now();
  const auto start = deps_.clock.now();
  for (const auto& warning : config_.warnings) {
    log_.warn(warning);
  }

  ExitCode code = ExitCode::kOk;
  try {
    phase("preflight", [&] { preflight(); });
    phase("resume", [&] { resume(); });
    phase("trigger", [&] { trigger(); });
    phase("worker", [&] { work(); });  // worker/native/loop.hpp
    phase("wait", [&] { wait(); });    // cycle_end.cpp
  } catch (const Stopped&) {
    code = exit_code_for_signal(deps_.stop_signal());
    summary_.message = "stopped by " + std::string(stop_signal_name(deps_.stop_signal()));
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
    code = exit_code_for_signal(deps_.stop_signal());
  }

  phase_always("pause", [&] { pause(); });  // cycle_end.cpp
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
  start_forgetting_own_worker();  // unless pause() has
  if (deps_.ended) {
    deps_.ended(summary_);  // with our worker row's DELETE in flight
  }
  finish_forgetting_own_worker();
  return code;
}

void CycleRun::record(const Logger& plog, const std::string& name, PhaseStatus status,
                      std::chrono::milliseconds duration, const std::string& message) {
  summary_.phases.push_back({name, status, duration, message});
  std::string line = "phase " + std::string(to_string(status)) + " in " + format_seconds(duration);
  if (!message.empty()) {
    line += ": " + message;
  }
  if (status == PhaseStatus::kFailed) {
    plog.error(line);
  } else {
    plog.info(line);
  }
}

void CycleRun::preflight() {
  auto pool = read_pool();
  if (!pool && config_.work_pool_create) {
    log_.info("work pool \"" + config_.work_pool + "\" not found: creating it (type process)");
    pool =
        deps_.client.create_work_pool(config_.work_pool, "process", default_process_job_template());
    early_due_.reset();  // read before the pool existed
  }
  if (!pool) {
    throw usage_error("PREFECT_WORK_POOL: work pool \"" + config_.work_pool + "\" not found at " +
                          config_.api_url,
                      Hint::kPoolNotFound);
  }
  pool_ = *pool;
  summary_.pool_id = pool_.id;
  if (config_.worker_type == "process" && pool_.type != "process") {
    throw usage_error("work pool \"" + pool_.name + "\" is of type \"" + pool_.type +
                          "\" but PREFECT_WORKER_TYPE is \"process\": the native worker runs "
                          "process pools only",
                      Hint::kPoolType);
  }
  log_.info("work pool \"" + pool_.name + "\": type " + pool_.type + ", " +
            (pool_.is_paused ? "paused" : "not paused") + ", status " + pool_.status);

  for (const auto& ref : config_.trigger_deployments) {
    Deployment deployment = resolve_trigger_deployment(deps_.client, config_, ref);
    if (!deployment.work_pool_name.empty() && deployment.work_pool_name != pool_.name) {
      log_.warn("deployment \"" + ref.full_name() + "\" belongs to work pool \"" +
                deployment.work_pool_name + "\", not \"" + pool_.name +
                "\": this cycle will trigger it but not run it");
    }
    deployments_.push_back(std::move(deployment));
  }

  // Whether there is work comes first: an idle tick syncs, installs and
  // probes nothing (`doctor` checks those without work). The checks still
  // run before anything changes on the server.
  check_quiet();
  if (quiet_) {
    skip("nothing due or active: no code sync, install, database check or interpreter probe");
    return;
  }
  preflight_ = deps_.preflight(log_.with({{"phase", "preflight"}}));
  summary_.preflight_sync = preflight_.sync_time;
  summary_.preflight_install = preflight_.install_time;
  summary_.preflight_checks = preflight_.checks_time;
  if (!preflight_.ran) {
    skip("no repository, code directory or database check configured");
  }
}

// Whether nothing due and nothing active would make this a quiet cycle
// (check_quiet).
bool CycleRun::may_be_quiet() const {
  return config_.trigger_deployments.empty() && !config_.run_forever && !config_.drain &&
         config_.auto_pause != AutoPause::kOff;
}

// The pool; when the cycle may be quiet, read in one round with the first
// page of the due runs check_quiet() asks for: one round trip fewer. The
// worker polls afresh after the preflight. The active count is asked only when nothing is due:
// in a cycle with work it would be a request for nothing.
std::optional<WorkPool> CycleRun::read_pool() {
  if (!may_be_quiet()) {
    return deps_.client.read_work_pool(config_.work_pool);
  }
  auto [pool, due] =
      deps_.client.read_together(PrefectClient::work_pool_read(config_.work_pool),
                                 PrefectClient::flow_runs_read(due_runs_filter(config_)));
  auto read = std::move(pool.get());
  early_due_ = std::move(due.value);
  return read;
}

FlowRunFilter CycleRun::active_runs_filter() const {
  FlowRunFilter active;
  active.work_pool_names = {config_.work_pool};
  active.state_types = config_.active_state_types;
  return active;
}

// An empty cycle changes nothing on the server: with nothing to trigger,
// no run due and none active (a killed cycle's runs count as active, so
// they are recovered), a run-once cycle that would pause at the end does
// not resume the pool at all. Two reads prove it (the first made with the
// pool's); a cron every minute on an idle pool leaves no resume/pause pair,
// worker row or event behind.
void CycleRun::check_quiet() {
  if (!may_be_quiet()) {
    return;
  }
  remember_due_runs();
  if (!tracked_ids_.empty()) {
    return;
  }
  if (deps_.client.count_flow_runs(active_runs_filter()) != 0) {
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

void CycleRun::resume() {
  if (quiet_) {
    skip(kQuiet);
    return;
  }
  resume_attempted_ = true;
  deps_.client.set_work_pool_paused(config_.work_pool, false);
  summary_.pool_resumed = true;
  log_.info("work pool \"" + config_.work_pool + "\" resumed");
}

void CycleRun::trigger() {
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
    log_.info("triggered \"" + ref.full_name() + "\": flow run " + run.name + " (" + run.id + ")");
  }
}

void CycleRun::work() {
  if (quiet_) {
    skip(kQuiet);
    return;
  }
  if (!due_read_) {
    remember_due_runs();
  }
  if (config_.wait_timeout.count() > 0) {
    wait_deadline_ = deps_.clock.now() + config_.wait_timeout;
  }
  auto stop_reason = [this]() -> std::string {
    if (int sig = deps_.stop_signal(); sig != 0) {
      return std::string(stop_signal_name(sig)) + " received";
    }
    if (deadline_passed()) {
      return "wait timeout of " + std::to_string(config_.wait_timeout.count()) +
             " s reached (PREFECT_WAIT_TIMEOUT_SECONDS)";
    }
    return "";
  };
  auto worker = deps_.make_worker(pool_, preflight_,
                                  WorkerHooks{stop_reason, [this] { start_first_count(); }});
  worker_registered_ = true;  // until it says otherwise: it may throw after its heartbeat
  WorkerPhaseResult result = worker->run(log_.with({{"phase", "worker"}}));
  worker_registered_ = result.registered;
  worker_ended_at_ = deps_.clock.now();
  summary_.server_version = result.server_version;
  for (auto& run : result.runs) {
    tracked_ids_.insert(run.id);
    worker_records_[run.id] = std::move(run);
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

// The runs of the pool that are due now: those the worker is expected to
// take. They are the runs the summary accounts for.
void CycleRun::remember_due_runs() {
  due_read_ = true;
  for (const auto& run :
       read_due_runs(deps_.client, config_, deps_.clock.wall_now() + config_.prefetch,
                     std::exchange(early_due_, std::nullopt))) {
    tracked_ids_.insert(run.id);
  }
  log_.info(std::to_string(tracked_ids_.size()) + " flow run(s) due in pool \"" +
            config_.work_pool + "\" (including triggered ones)");
}

}  // namespace cycle_detail

ExitCode run_cycle(const Config& config, const Logger& log, CycleDeps& deps,
                   CycleSummary& summary) {
  return cycle_detail::CycleRun(config, log, deps, summary).run();
}

}  // namespace pc
