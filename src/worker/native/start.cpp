#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "job_config/command_split.hpp"
#include "job_config/job_config.hpp"
#include "worker/native/loop.hpp"

// The native worker's starts (loop.hpp): from a claimed run and its job
// configuration to a supervised process, through the ProcessStarter seam
// (cold, or forked by the zygote).

namespace pc {
namespace {

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

}  // namespace

std::shared_ptr<ProcessStarter> NativeWorker::Impl::real_processes() {
  if (!config_.warm_start) {
    return std::make_shared<ProcessStarterImpl>();
  }
  ZygoteOptions warm;
  warm.python = config_.python;
  warm.preload = config_.preload_modules;
  warm.env = options_.child_env;
  return std::make_shared<ProcessStarterImpl>(std::move(warm), log_);
}

// One claimed while the cycle stops is started and stopped at once, as one
// claimed just before it: its report then says why it did not run
// (final_state.hpp).
void NativeWorker::Impl::start_claimed(const Candidate& c) {
  try {
    start(c.run, c.deployment, c.log);
    if (stopping()) {
      Running& r = running_.at(c.run.id);
      r.stop_reason = stop_reason_;
      stop_process(r);
    }
  } catch (const Error& e) {
    // The run is ours and PENDING: it must not stay so.
    c.log.error(std::string("could not start the flow run: ") + e.what());
    reports_.crash_unstarted(c.run, e.what());
  }
}

void NativeWorker::Impl::start(FlowRun run, const Deployment& deployment, const Logger& rlog) {
  ApiResolver resolver(client_, options_.child_env);
  json variables = merge_job_variables(deployment.job_variables, run.job_variables);
  json populated = apply_job_template(pool_.base_job_template, variables, resolver);
  ProcessJobConfig job = to_process_job_config(populated);

  SpawnOptions spawn;
  if (job.command) {
    spawn.argv = split_command(*job.command);
  }
  if (spawn.argv.empty()) {
    spawn.argv = engine_command(config_.python);
  }
  Environment env = options_.child_env;
  env["PREFECT__FLOW_RUN_ID"] = run.id;
  env["PREFECT__WORKER_NAME"] = config_.worker_name;
  const std::string flow = claims_.flow_name(run.flow_id);
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

  const std::string id = run.id;
  Running entry(std::move(run), rlog);
  entry.temp_dir = temp_dir;
  entry.stream_output = job.stream_output;
  entry.started = clock_.now();
  Running& r = running_.emplace(id, std::move(entry)).first->second;
  ProcessStarter::Started started;
  try {
    // Map nodes do not move, so the callbacks may keep `r` until it ends.
    started = processes_->start(
        spawn,
        [this, &r](std::string_view line, bool is_stderr) {
          if (r.stream_output && r.spawn_error.empty()) {
            (is_stderr ? r.err : r.out).line(line, clock_.now());
          }
        },
        [this, id](const ExitStatus& status) { exited_.emplace_back(id, status); });
  } catch (...) {
    running_.erase(id);  // no process: nothing will end it
    throw;
  }
  r.process = started.id;
  r.spawn_error = started.spawn_error;
  const pid_t pid = started.pid;
  ++started_;
  if (r.spawn_error.empty()) {
    rlog.info("started: " + spawn.argv.front() + " (pid " + std::to_string(pid) + ", " +
              std::to_string(running_.size()) + " running)");
    updates_.add(
        "record infrastructure_pid", rlog,
        {id, json{{"infrastructure_pid", options_.hostname + ":" + std::to_string(pid)}}, false});
    journal_.started(id, std::to_string(pid), started.warm);
  } else {
    rlog.error(r.spawn_error);
    journal_.not_started(id, r.spawn_error);
  }
}

}  // namespace pc
