#include "worker/worker.hpp"

#include <signal.h>
#include <stdlib.h>

#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "common/error.hpp"
#include "prefect/server_version.hpp"
#include "process/process.hpp"
#include "worker/command_split.hpp"
#include "worker/flow_output.hpp"
#include "worker/job_config.hpp"
#include "worker/recover.hpp"
#include "worker/run_updates.hpp"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;
// How long one supervision round may wait for output or an exit: short, so
// stop requests, heartbeats and polls are never late by more than this.
constexpr std::chrono::milliseconds kSupervisePoll{100};
using json = nlohmann::json;
namespace fs = std::filesystem;

// Placeholders resolved through the API and the worker's environment, with
// per-run caches.
class ApiResolver final : public TemplateResolver {
 public:
  ApiResolver(PrefectClient& client, const Environment& env) : client_(client), env_(env) {}
  std::optional<std::string> env(const std::string& name) override {
    auto it = env_.find(name);
    return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::optional<json> variable(const std::string& name) override {
    return client_.read_variable_by_name(name);
  }
  std::optional<json> block(const std::string& slug, const std::string& name) override {
    return data_of(client_.read_block_document(slug, name));
  }
  std::optional<json> block_by_id(const std::string& id) override {
    return data_of(client_.read_block_document_by_id(id));
  }

 private:
  static std::optional<json> data_of(const std::optional<json>& document) {
    if (!document || !document->is_object()) {
      return std::nullopt;
    }
    return document->value("data", json::object());
  }

  PrefectClient& client_;
  const Environment& env_;
};

struct Running {
  FlowRun run;
  Logger log;
  FlowOutput out;  // the process's stdout, as log events
  FlowOutput err;  // its stderr
  ProcessSupervisor::Id process = 0;
  std::string spawn_error;  // the command could not be started
  std::optional<fs::path> temp_dir;
  bool stream_output = true;
  bool cancelling = false;  // the run was cancelled in Prefect
  std::string stop_reason;  // the cycle is stopping it
  Clock::time_point started;
};

// "N (S sockets)": the entries of /proc/self/fd and how many are sockets.
// The load test compares start and end: the other descriptors must match,
// the sockets are the API connections kept alive (at most
// CurlTransport::kMaxInFlight, its multi handle's wake-up pair, and one).
std::string open_fds() {
  std::error_code ec;
  std::size_t n = 0;
  std::size_t sockets = 0;
  for (auto it = fs::directory_iterator("/proc/self/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
    std::error_code link_ec;
    if (fs::read_symlink(it->path(), link_ec).string().rfind("socket:", 0) == 0) {
      ++sockets;
    }
  }
  return std::to_string(n) + " (" + std::to_string(sockets) + " sockets)";
}

}  // namespace

std::string crashed_message(const std::string& exit_description, const std::string& meaning) {
  return "Flow run process exited with " + exit_description + " (" + meaning + ").";
}

class NativeWorker::Impl {
 public:
  Impl(const Config& config, PrefectClient& client, Sleeper& sleeper, WorkPool pool,
       NativeWorkerOptions options)
      : config_(config),
        client_(client),
        sleeper_(sleeper),
        pool_(std::move(pool)),
        options_(std::move(options)),
        log_(Logger::null()),
        updates_(client) {
    if (pool_.base_job_template.empty()) {
      pool_.base_job_template = default_process_job_template();
    }
  }

  WorkerPhaseResult run(const Logger& log) {
    log_ = log;
    const auto start_wall = std::chrono::system_clock::now();
    horizon_ = start_wall + config_.prefetch;
    log_.info("native worker \"" + config_.worker_name + "\" on pool \"" + pool_.name +
              "\": limit " + std::to_string(config_.flow_limit) + ", prefetch " +
              std::to_string(config_.prefetch.count()) + " s" +
              (config_.run_forever ? ", until stopped"
               : config_.drain     ? ", drain"
                                   : ", run once"));
    log_.debug("open file descriptors at start: " + open_fds());
    // Before our first heartbeat: it would refresh the row that tells whether
    // a previous cycle with our name died.
    if (config_.recover_stale_runs) {
      recover_stale_runs(config_, client_, options_.hostname, log_);
    }
    // Poll first: a run-once worker with nothing due stops here, without a
    // heartbeat, so it leaves no worker row to delete (two requests fewer).
    bool idle = false;
    try {
      poll();
      idle = finished();
      if (!idle) {
        heartbeat();
        loop();
      }
    } catch (const std::exception& e) {
      // Whatever failed (an API error, or a bug of ours that threw), the runs
      // we started must not stay PENDING/RUNNING.
      if (!running_.empty()) {
        begin_stop(std::string("the worker failed: ") + e.what());
        while (!running_.empty()) {
          supervise();
        }
      }
      throw;
    }
    updates_.send_due(true);
    log_.debug("open file descriptors at end: " + open_fds());
    log_.info("native worker done: " + std::to_string(launched_) + " flow run(s) launched, " +
              std::to_string(skipped_) + " skipped");
    WorkerPhaseResult result;
    result.runs = std::move(records_);
    result.registered = !idle;
    return result;
  }

 private:
  void loop() {
    while (true) {
      const std::string stop = options_.stop_reason();
      if (!stop.empty() && !stopping_) {
        begin_stop(stop);
      }
      if (!stopping_) {
        fill_slots();
        if (finished()) {
          break;  // nothing to wait for: do not sit in supervise()
        }
      }
      supervise();
      updates_.send_due(false);
      const auto now = Clock::now();
      report_progress(now);
      if (now >= next_heartbeat_) {
        heartbeat();
      }
      if (!running_.empty() && now >= next_cancel_check_) {
        check_cancellations();
      }
      if (stopping_) {
        if (running_.empty()) {
          break;
        }
        continue;
      }
      if (wants_poll(now)) {
        poll();
      }
      if (finished()) {
        break;
      }
    }
  }

  // One line every PREFECT_WAIT_POLL_SECONDS while runs are running: a long,
  // silent flow run shows as alive, and a hung cycle as hung.
  void report_progress(Clock::time_point now) {
    if (running_.empty()) {
      next_progress_ = now + config_.wait_poll;  // a full interval after the first start
      return;
    }
    if (now < next_progress_) {
      return;
    }
    next_progress_ = now + config_.wait_poll;
    std::string names;
    int listed = 0;
    for (const auto& [id, r] : running_) {
      if (listed++ == 5) {
        names += ", ...";
        break;
      }
      const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - r.started);
      names +=
          (names.empty() ? "" : ", ") + r.run.name + " (" + std::to_string(age.count()) + " s)";
    }
    log_.info(std::to_string(running_.size()) + " flow run(s) running: " + names + "; " +
                  std::to_string(queue_.size()) + " queued, " + std::to_string(records_.size()) +
                  " done",
              {{"running", static_cast<long long>(running_.size())},
               {"queued", static_cast<long long>(queue_.size())},
               {"done", static_cast<long long>(records_.size())}});
  }

  // --- heartbeat and polling ---------------------------------------------

  // One attempt, without the client's back-off (a 503 would stall the loop
  // for 1 s); a failed heartbeat is sent again from the loop 1 s later, then
  // 2 s, 4 s, ... up to the interval. The poll before the first one has
  // already shown that the API answers.
  void heartbeat() {
    try {
      client_.send_worker_heartbeat(pool_.name, config_.worker_name, config_.heartbeat_interval,
                                    RequestOptions{false, std::nullopt});
      heartbeat_failures_ = 0;
      next_heartbeat_ = Clock::now() + config_.heartbeat_interval;
    } catch (const Error& e) {
      const auto retry_in = std::min<std::chrono::seconds>(
          std::chrono::seconds(1 << std::min(heartbeat_failures_++, 5)),
          config_.heartbeat_interval);
      // One failure that the next try repairs (a 503 from a busy SQLite
      // server) is routine; two in a row are worth a warning.
      log_.log(heartbeat_failures_ >= 2 ? LogLevel::kWarn : LogLevel::kDebug,
               "worker heartbeat failed (" + std::to_string(heartbeat_failures_) +
                   " in a row), next try in " + std::to_string(retry_in.count()) +
                   " s: " + e.what());
      next_heartbeat_ = Clock::now() + retry_in;
    }
  }

  bool wants_poll(Clock::time_point now) const {
    const bool slots_free = static_cast<int>(running_.size()) < config_.flow_limit;
    if (!slots_free || !queue_.empty()) {
      return false;
    }
    if (config_.run_forever || config_.drain) {
      return now >= next_poll_;
    }
    // Run once: keep taking what was due at the start until a poll has
    // nothing new (a poll returns at most 200 runs).
    return !exhausted_ && now >= next_poll_;
  }

  void poll() {
    next_poll_ = Clock::now() + (config_.run_forever || config_.drain
                                     ? std::chrono::milliseconds(config_.query_interval)
                                     : std::chrono::milliseconds(500));
    if (config_.run_forever || config_.drain) {
      horizon_ = std::chrono::system_clock::now() + config_.prefetch;
    }
    std::vector<WorkerFlowRun> runs;
    try {
      runs = client_.get_scheduled_flow_runs(pool_.name, config_.work_queues, horizon_);
      consecutive_failures_ = 0;
    } catch (const Error& e) {
      if (!config_.run_forever) {
        throw;
      }
      ++consecutive_failures_;
      if (consecutive_failures_ >= config_.max_consecutive_failures) {
        throw Error(
            ExitCode::kApi,
            "crash loop: " + std::to_string(consecutive_failures_) +
                " API failures in a row (PREFECT_WORKER_MAX_CONSECUTIVE_FAILURES); the last: " +
                e.message(),
            Hint::kWorkerCrashLoop);
      }
      auto backoff = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(1000) * (1 << std::min(consecutive_failures_ - 1, 6)),
          std::chrono::milliseconds(60000));
      log_.warn(std::string("polling failed (") + std::to_string(consecutive_failures_) +
                " in a row), next try in " + std::to_string(backoff.count()) + " ms: " + e.what());
      next_poll_ = Clock::now() + backoff;
      return;
    }
    int fresh = 0;
    for (auto& item : runs) {
      if (seen_.insert(item.flow_run.id).second) {
        queue_.push_back(std::move(item.flow_run));
        ++fresh;
      }
    }
    if (fresh == 0) {
      // On PostgreSQL a poll skips the rows a neighbour's poll holds locked
      // (FOR UPDATE SKIP LOCKED), so one empty answer before we launched
      // anything may hide due runs: the cycle only starts a worker when runs
      // are due or active. A second poll, 500 ms later, decides.
      exhausted_ = launched_ > 0 || ++empty_polls_ >= 2;
    }
    log_.debug("polled pool \"" + pool_.name + "\": " + std::to_string(runs.size()) +
               " scheduled run(s), " + std::to_string(fresh) + " new");
  }

  bool finished() const {
    if (config_.run_forever || !running_.empty() || !queue_.empty()) {
      return false;
    }
    if (config_.drain) {
      return exhausted_;  // a poll after the last run ended found nothing new
    }
    return exhausted_;
  }

  // --- claiming and launching --------------------------------------------

  void fill_slots() {
    std::vector<FlowRun> batch;
    // At most one page of the re-read (FlowRunFilter's limit) per batch.
    const std::size_t most = static_cast<std::size_t>(FlowRunFilter{}.limit);
    while (static_cast<int>(running_.size() + batch.size()) < config_.flow_limit &&
           batch.size() < most && !queue_.empty() && options_.stop_reason().empty()) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      if (config_.drain && queue_.empty()) {
        exhausted_ = false;  // poll again once this one is taken
      }
    }
    if (!batch.empty()) {
      claim_and_launch(batch);
    }
  }

  std::optional<Deployment> deployment_of(const FlowRun& run) {
    if (run.deployment_id.empty()) {
      return Deployment{};
    }
    if (auto it = deployments_.find(run.deployment_id); it != deployments_.end()) {
      return it->second;
    }
    auto deployment = client_.read_deployment(run.deployment_id);
    if (deployment) {
      deployments_[run.deployment_id] = *deployment;
    }
    return deployment;
  }

  std::string flow_name(const std::string& flow_id) {
    if (flow_id.empty()) {
      return "";
    }
    if (auto it = flow_names_.find(flow_id); it != flow_names_.end()) {
      return it->second;
    }
    std::string name;
    try {
      name = client_.read_flow(flow_id).value("name", "");
    } catch (const Error& e) {
      log_.warn(std::string("cannot read flow ") + flow_id + ": " + e.what());
    }
    flow_names_[flow_id] = name;
    return name;
  }

  // A run on its way from the poll to its process.
  struct Candidate {
    FlowRun run;
    Deployment deployment;
    Logger log;
    std::string transition_id;
  };

  // The runs that fill the free slots, step by step, each step's requests
  // sent together (an API 100 ms away costs three round trips for the batch,
  // not four per run): one re-read of them all, their PENDING proposals, then
  // their processes, then their labels and infrastructure_pids.
  void claim_and_launch(const std::vector<FlowRun>& polled) {
    std::vector<Candidate> candidates = still_scheduled(polled);
    std::vector<StateProposal> proposals;
    proposals.reserve(candidates.size());
    for (const auto& c : candidates) {
      proposals.push_back({c.run.id,
                           {StateType::kPending, "", claim_message(config_.worker_name), {}},
                           false,
                           c.transition_id});
    }
    auto outcomes = client_.set_flow_run_states(proposals);
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      Candidate& c = candidates[i];
      if (!claimed(outcomes[i], c)) {
        ++skipped_;
        continue;
      }
      label(c.run, c.log);
      const std::string id = c.run.id;  // `run` is moved into launch()
      try {
        launch(std::move(c.run), c.deployment, c.log);
      } catch (const Error& e) {
        // The run is ours and PENDING: it must not stay so.
        c.log.error(std::string("could not start the flow run: ") + e.what());
        set_state(id,
                  {StateType::kCrashed, "",
                   std::string("Failed to submit flow run to infrastructure: ") + e.what()},
                  false);
        remember(id);
      }
    }
    updates_.send_new();
  }

  // Prefect lets a deployment's run leave a terminal state for PENDING (a
  // manual rerun), so a PENDING proposal from a stale poll could run a
  // finished run again. Claim only what is still SCHEDULED now (one read for
  // the batch); a concurrent claim in the remaining window is ABORTed by the
  // server.
  std::vector<Candidate> still_scheduled(const std::vector<FlowRun>& polled) {
    std::map<std::string, FlowRun> current;
    try {
      FlowRunFilter filter;
      for (const auto& run : polled) {
        filter.ids.push_back(run.id);
      }
      for (auto& run : client_.read_flow_runs(filter)) {
        current.emplace(run.id, std::move(run));
      }
    } catch (const Error& e) {
      for (const auto& run : polled) {
        run_log(run).warn(std::string("skipped: cannot read the run before claiming it: ") +
                          e.what());
        ++skipped_;
      }
      return {};
    }
    std::vector<Candidate> candidates;
    for (const auto& p : polled) {
      Logger rlog = run_log(p);
      auto it = current.find(p.id);
      if (it == current.end() || it->second.current_type() != StateType::kScheduled) {
        rlog.info("skipped: no longer SCHEDULED (" +
                  (it != current.end() && it->second.current_type()
                       ? std::string(to_string(*it->second.current_type()))
                       : std::string("deleted")) +
                  "); another worker has it");
        ++skipped_;
        continue;
      }
      FlowRun run = std::move(it->second);
      auto deployment = deployment_of(run);
      if (!deployment) {
        set_state(run.id,
                  {StateType::kCancelled, "",
                   "Deployment " + run.deployment_id + " no longer exists, cancelled run."},
                  true);
        rlog.info("skipped: its deployment no longer exists; cancelled the run");
        ++skipped_;
        continue;
      }
      candidates.push_back({std::move(run), std::move(*deployment), rlog, new_uuid4()});
    }
    return candidates;
  }

  Logger run_log(const FlowRun& run) const {
    return log_.with({{"flow_run", run.name}, {"flow_run_id", run.id}});
  }

  // The answer to a candidate's PENDING proposal: true when the run is ours.
  bool claimed(const Outcome<SetStateResult>& outcome, const Candidate& c) {
    if (outcome.error) {
      try {
        std::rethrow_exception(outcome.error);
      } catch (const Error& e) {
        if (applied_despite_error(c.run.id, c.transition_id, c.log)) {
          return true;
        }
        c.log.warn(std::string("claim failed: ") + e.what());
        return false;
      }
    }
    const SetStateResult& result = *outcome.value;
    if (result.status == SetStateStatus::kWait) {
      // Rare (a concurrency limit): this run waits as asked, on its own.
      return wait_as_asked(result, c.log) && claim(c.run, c.log);
    }
    return accepted(result, c.log);
  }

  // Sleeps the delay of a WAIT answer; false when a stop cut it short.
  bool wait_as_asked(const SetStateResult& result, const Logger& rlog) {
    auto delay = std::chrono::milliseconds(
        static_cast<long long>(std::min(result.delay_seconds, 30.0) * 1000));
    rlog.info("server asked to wait " + std::to_string(delay.count()) +
              " ms before claiming: " + result.reason);
    return sleeper_.sleep_for(delay) && options_.stop_reason().empty();
  }

  // An ACCEPT into PENDING is a claim; anything else is logged as a skip.
  bool accepted(const SetStateResult& result, const Logger& rlog) const {
    if (result.status == SetStateStatus::kAccept && result.state &&
        result.state->type == StateType::kPending) {
      rlog.debug("claimed (PENDING accepted)");
      return true;
    }
    std::string state =
        result.state ? std::string(to_string(result.state->type)) +
                           (result.state->name.empty() ? "" : " (" + result.state->name + ")")
                     : "unknown";
    rlog.info("skipped: the server answered " + std::string(to_string(result.status)) +
              " to the PENDING proposal, the run is " + state +
              (result.reason.empty() ? "" : ": " + result.reason));
    return false;
  }

  // Labels as Prefect's worker sets them, and ours (kClaimLabel): it lets a
  // later cycle, on any host, recognise runs we leave behind if we are killed.
  void label(const FlowRun& run, const Logger& rlog) {
    if (!labels_supported()) {
      return;  // the claim's PENDING message names us instead (recover.hpp)
    }
    json labels{{std::string(kClaimLabel), config_.worker_name},
                {"prefect.worker.name", config_.worker_name},
                {"prefect.worker.type", "process"},
                {"prefect.work-pool.name", pool_.name},
                {"prefect.work-pool.id", pool_.id}};
    updates_.add("label the flow run", rlog, {run.id, labels, true});
  }

  // Whether the server has PATCH /flow_runs/{id}/labels: asked once, on the
  // first claim (an empty cycle does not ask). Prefect Cloud has no
  // /admin/version and has labels; a server that cannot say is assumed new.
  bool labels_supported() {
    if (labels_) {
      return *labels_;
    }
    labels_ = true;
    if (is_prefect_cloud(config_.api_url)) {
      return true;
    }
    try {
      const std::string version = client_.read_server_version();
      ServerFeatures features = features_of(ServerVersion::parse(version));
      labels_ = features.flow_run_labels;
      if (!features.missing().empty()) {
        log_.info("Prefect server " + version + ": " + features.missing());
      }
    } catch (const Error& e) {
      log_.debug(std::string("cannot read the server's version, assuming labels: ") + e.what());
    }
    return *labels_;
  }

  // One run's PENDING proposal, alone, after a WAIT answer. True when the run
  // is ours.
  bool claim(const FlowRun& run, const Logger& rlog) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      const std::string transition_id = new_uuid4();
      SetStateResult result;
      try {
        // The message names us: on servers without flow-run labels it is how
        // a later cycle tells that a prefect-cycle worker claimed the run.
        result = client_.set_flow_run_state(
            run.id, {StateType::kPending, "", claim_message(config_.worker_name)}, false,
            transition_id);
      } catch (const Error& e) {
        if (applied_despite_error(run.id, transition_id, rlog)) {
          return true;
        }
        rlog.warn(std::string("claim failed: ") + e.what());
        return false;
      }
      if (result.status != SetStateStatus::kWait) {
        return accepted(result, rlog);
      }
      if (!wait_as_asked(result, rlog)) {
        return false;
      }
    }
    return false;
  }

  // After a failed PENDING proposal: the server may have applied it before
  // its answer was lost (a reset, a malformed or oversized body, retries used
  // up). The run is ours if its current state carries our transition_id; we
  // then go on, so that it is not left PENDING for ever.
  bool applied_despite_error(const std::string& id, const std::string& transition_id,
                             const Logger& rlog) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        auto current = client_.read_flow_run(id);
        bool ours = false;
        if (current && current->state && current->state->type == StateType::kPending) {
          auto tid = current->state->state_details.find("transition_id");
          ours = tid != current->state->state_details.end() && tid->is_string() &&
                 *tid == transition_id;
        }
        if (ours) {
          rlog.warn(
              "the answer to our PENDING proposal was lost, but the server applied it: "
              "the run is ours");
        }
        return ours;
      } catch (const Error& e) {
        rlog.warn(std::string("cannot read the run after a failed claim: ") + e.what());
        if (!sleeper_.sleep_for(std::chrono::seconds(1 << attempt))) {
          break;
        }
      }
    }
    rlog.error(
        "cannot tell whether the failed claim was applied; if the run is PENDING with "
        "transition_id " +
        transition_id + ", it is this cycle's");
    return false;
  }

  void launch(FlowRun run, const Deployment& deployment, const Logger& rlog) {
    ApiResolver resolver(client_, options_.child_env);
    json variables = merge_job_variables(deployment.job_variables, run.job_variables);
    json populated = apply_job_template(pool_.base_job_template, variables, resolver);
    ProcessJobConfig job = to_process_job_config(populated);

    SpawnOptions spawn;
    if (job.command) {
      spawn.argv = split_command(*job.command);
    }
    if (spawn.argv.empty()) {
      spawn.argv = {config_.python, "-m", "prefect.engine"};
    }
    Environment env = options_.child_env;
    env["PREFECT__FLOW_RUN_ID"] = run.id;
    env["PREFECT__WORKER_NAME"] = config_.worker_name;
    const std::string flow = flow_name(run.flow_id);
    if (!run.flow_id.empty()) {
      env["PREFECT__FLOW_ID"] = run.flow_id;
    }
    if (!flow.empty()) {
      env["PREFECT__FLOW_NAME"] = flow;
    }
    if (!deployment.id.empty()) {
      env["PREFECT__DEPLOYMENT_ID"] = deployment.id;
      env["PREFECT__DEPLOYMENT_NAME"] = deployment.name;
    }
    for (const auto& [key, value] : job.env) {
      env[key] = value;
    }
    spawn.env = env;

    std::optional<fs::path> temp_dir;
    if (job.working_dir) {
      spawn.cwd = *job.working_dir;
    } else if (!options_.default_working_dir.empty()) {
      spawn.cwd = options_.default_working_dir;
    } else {
      std::string pattern = (fs::temp_directory_path() / "prefect-cycle-XXXXXX").string();
      if (mkdtemp(pattern.data()) == nullptr) {
        const std::string reason = std::strerror(errno);
        throw Error(ExitCode::kApi,
                    "cannot create the temporary working directory " + pattern + ": " + reason,
                    Hint::kTempDir);
      }
      temp_dir = pattern;
      spawn.cwd = *temp_dir;
    }

    Child child = Child::spawn(spawn);
    const pid_t pid = child.pid();
    const std::string id = run.id;
    Running entry{std::move(run),
                  rlog,
                  FlowOutput(rlog),
                  FlowOutput(rlog),
                  0,
                  child.spawn_error(),
                  temp_dir,
                  job.stream_output,
                  false,
                  "",
                  Clock::now()};
    Running& r = running_.emplace(id, std::move(entry)).first->second;
    // Map nodes do not move, so the callbacks may keep `r` until it ends.
    r.process = processes_.add(
        std::move(child),
        [&r](std::string_view line, bool is_stderr) {
          if (r.stream_output && r.spawn_error.empty()) {
            (is_stderr ? r.err : r.out).line(line);
          }
        },
        [this, id](const ExitStatus& status) { exited_.emplace_back(id, status); });
    ++launched_;
    if (r.spawn_error.empty()) {
      rlog.info("started: " + spawn.argv.front() + " (pid " + std::to_string(pid) + ", " +
                std::to_string(running_.size()) + " running)");
      updates_.add(
          "record infrastructure_pid", rlog,
          {id, json{{"infrastructure_pid", options_.hostname + ":" + std::to_string(pid)}}, false});
    } else {
      rlog.error(r.spawn_error);
    }
  }

  // --- supervision --------------------------------------------------------

  void supervise() {
    if (processes_.empty()) {
      sleeper_.sleep_for(kSupervisePoll);
    } else {
      processes_.run_once(kSupervisePoll);
    }
    const auto now = Clock::now();
    for (auto& [id, r] : running_) {
      r.out.tick(now);
      r.err.tick(now);
    }
    auto exited = std::move(exited_);
    exited_.clear();
    for (const auto& [id, status] : exited) {
      auto it = running_.find(id);
      if (it != running_.end()) {
        finish(it->second, status);
        running_.erase(it);
      }
    }
  }

  void stop_process(Running& r) { processes_.terminate(r.process, config_.grace); }

  void check_cancellations() {
    next_cancel_check_ = Clock::now() + std::min(config_.query_interval, std::chrono::seconds(10));
    FlowRunFilter filter;
    for (const auto& [id, r] : running_) {
      if (!r.cancelling) {
        filter.ids.push_back(id);
      }
    }
    if (filter.ids.empty()) {
      return;
    }
    filter.state_types = {StateType::kCancelling, StateType::kCancelled};
    std::vector<FlowRun> cancelled;
    try {
      cancelled = client_.read_flow_runs(filter);
    } catch (const Error& e) {
      log_.warn(std::string("cancellation check failed: ") + e.what());
      return;
    }
    for (const auto& run : cancelled) {
      auto it = running_.find(run.id);
      if (it == running_.end()) {
        continue;
      }
      it->second.cancelling = true;
      it->second.log.info("cancellation requested in Prefect: SIGTERM, then SIGKILL after " +
                          std::to_string(config_.grace.count()) + " s");
      stop_process(it->second);
    }
  }

  void begin_stop(const std::string& reason) {
    stopping_ = true;
    log_.warn("stopping: " + reason + "; " + std::to_string(running_.size()) +
              " flow run process(es) get SIGTERM, SIGKILL after " +
              std::to_string(config_.grace.count()) + " s");
    queue_.clear();
    for (auto& [id, r] : running_) {
      r.stop_reason = reason;
      stop_process(r);
    }
  }

  void finish(Running& r, const ExitStatus& status) {
    r.out.flush();
    r.err.flush();
    const std::string& id = r.run.id;
    if (r.temp_dir) {
      std::error_code ec;
      fs::remove_all(*r.temp_dir, ec);
    }
    std::optional<StateType> type;
    std::optional<FlowRun> seen;
    try {
      if ((seen = client_.read_flow_run(id))) {
        type = seen->current_type();
      }
    } catch (const Error& e) {
      r.log.warn(std::string("cannot read the run's state after exit: ") + e.what());
    }
    const bool terminal = type && is_terminal(*type);
    // The engine reports CRASHED by itself when it gets our SIGTERM; when we
    // stopped the process, our reason replaces its generic message.
    const bool crashed_by_us =
        type == StateType::kCrashed && (!r.stop_reason.empty() || r.cancelling);
    const std::string described = status.describe();
    if (!r.stop_reason.empty() && (!terminal || crashed_by_us)) {
      if (!type || *type == StateType::kPending || *type == StateType::kScheduled) {
        StateCreate scheduled{StateType::kScheduled, "", ""};
        scheduled.state_details["scheduled_time"] =
            format_iso8601(std::chrono::system_clock::now());
        scheduled.message = "prefect-cycle stopped before the flow started (" + r.stop_reason +
                            "); scheduled again for the next cycle";
        set_state(id, scheduled, true);
        r.log.info("handed back: SCHEDULED again (" + r.stop_reason + ")");
      } else {
        set_state(id,
                  {StateType::kCrashed, "",
                   "prefect-cycle stopped this flow run: " + r.stop_reason + "; the process " +
                       (status.signal ? "was " + described : "exited with " + described) + "."},
                  true);
        r.log.warn("stopped: CRASHED (" + r.stop_reason + ")");
      }
    } else if (r.cancelling && type != StateType::kCancelled && (!terminal || crashed_by_us)) {
      // As Prefect's runner does after killing a cancelled run.
      set_state(id, {StateType::kCancelled, "", "Cancelled: prefect-cycle stopped the process."},
                true);
      r.log.info("cancelled: process stopped (" + described + ")");
    } else if (!terminal) {
      std::string message =
          r.spawn_error.empty()
              ? crashed_message(described, explain_exit(status))
              : "Failed to submit flow run to infrastructure: " + r.spawn_error + ".";
      auto result = set_state(id, {StateType::kCrashed, "", message}, false);
      r.log.warn("process " + described + " but the run was " +
                 (type ? std::string(to_string(*type)) : std::string("unknown")) +
                 ": proposed CRASHED (" + std::string(to_string(result.status)) + ")");
    } else {
      r.log.info("process " + described + "; flow run " + std::string(to_string(*type)));
      remember(id, seen);  // final, as just read: no second request
      return;
    }
    remember(id);
  }

  // The run's final state for the summary, read now unless `known` is given.
  void remember(const std::string& id, const std::optional<FlowRun>& known = std::nullopt) {
    RunRecord record{id, "", "UNKNOWN", "", ""};
    try {
      if (auto run = known ? known : client_.read_flow_run(id)) {
        record.name = run->name;
        if (auto t = run->current_type()) {
          record.state_type = std::string(to_string(*t));
        }
        if (run->state) {
          record.state_name = run->state->name;
          record.message = run->state->message;
        }
      }
    } catch (const Error& e) {
      log_.warn(std::string("cannot read flow run ") + id + ": " + e.what());
    }
    records_.push_back(std::move(record));
  }

  // A final report (CRASHED, CANCELLED, SCHEDULED again): a run must not stay
  // PENDING/RUNNING because one answer was a 500 or unreadable, so it is
  // tried three times, with one transition_id so that a proposal the server
  // already applied is not applied twice.
  SetStateResult set_state(const std::string& id, const StateCreate& state, bool force) {
    const std::string transition_id = new_uuid4();
    std::string error;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      try {
        return client_.set_flow_run_state(id, state, force, transition_id);
      } catch (const Error& e) {
        if (state.type == StateType::kPending) {
          throw;
        }
        error = e.what();
      }
      if (attempt < 3) {
        log_.warn("could not set flow run " + id + " to " + std::string(to_string(state.type)) +
                  " (attempt " + std::to_string(attempt) + " of 3, next in " +
                  std::to_string(attempt) + " s): " + error);
        sleeper_.sleep_for(std::chrono::seconds(attempt));  // even when stopping
      }
    }
    log_.error("could not set flow run " + id + " to " + std::string(to_string(state.type)) + ": " +
               error);
    SetStateResult failed;
    failed.status = SetStateStatus::kAbort;
    failed.reason = error;
    return failed;
  }

  const Config& config_;
  PrefectClient& client_;
  Sleeper& sleeper_;
  WorkPool pool_;
  NativeWorkerOptions options_;
  Logger log_;

  std::chrono::system_clock::time_point horizon_;
  std::deque<FlowRun> queue_;
  std::set<std::string> seen_;
  std::map<std::string, Running> running_;
  // Declared after running_: destroyed (children killed) before the entries
  // their callbacks point to.
  ProcessSupervisor processes_;
  std::vector<std::pair<std::string, ExitStatus>> exited_;
  std::map<std::string, Deployment> deployments_;
  std::map<std::string, std::string> flow_names_;
  std::vector<RunRecord> records_;
  RunUpdates updates_;  // labels and infrastructure_pids (run_updates.hpp)
  Clock::time_point next_heartbeat_{};
  Clock::time_point next_poll_{};
  Clock::time_point next_cancel_check_{};
  Clock::time_point next_progress_{};
  std::optional<bool> labels_;  // the server has flow-run labels; unknown until the first claim
  bool exhausted_ = false;
  int empty_polls_ = 0;  // before the first launch
  bool stopping_ = false;
  int launched_ = 0;
  int skipped_ = 0;
  int consecutive_failures_ = 0;
  int heartbeat_failures_ = 0;  // in a row
};

NativeWorker::NativeWorker(const Config& config, PrefectClient& client, Sleeper& sleeper,
                           WorkPool pool, NativeWorkerOptions options)
    : impl_(std::make_unique<Impl>(config, client, sleeper, std::move(pool), std::move(options))) {}

NativeWorker::~NativeWorker() = default;

WorkerPhaseResult NativeWorker::run(const Logger& log) {
  return impl_->run(log);
}

}  // namespace pc
