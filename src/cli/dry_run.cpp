#include "cli/dry_run.hpp"

#include "common/error.hpp"
#include "cycle/plan_reads.hpp"
#include "prefect/types.hpp"

namespace pc {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : ", ") + item;
  }
  return out;
}

}  // namespace

ExitCode print_plan(const Config& config, PrefectClient& client, std::ostream& out) {
  auto pool = client.read_work_pool(config.work_pool);
  out << "plan (dry run: nothing is changed on the server)\n";
  out << "  API: " << config.api_url << "\n";
  if (!pool) {
    if (!config.work_pool_create) {
      throw usage_error("PREFECT_WORK_POOL: work pool \"" + config.work_pool + "\" not found at " +
                            config.api_url,
                        Hint::kPoolNotFound);
    }
    out << "  work pool: \"" << config.work_pool << "\" does not exist: would create it (type "
        << "process)\n";
  } else {
    out << "  work pool: \"" << pool->name << "\" (type " << pool->type << ", "
        << (pool->is_paused ? "paused" : "not paused") << ", status " << pool->status
        << "): would resume it\n";
  }
  out << "  queues: " << (config.work_queues.empty() ? "all" : join(config.work_queues)) << "\n";

  if (config.trigger_deployments.empty()) {
    out << "  trigger: none\n";
  }
  for (const auto& ref : config.trigger_deployments) {
    const Deployment deployment = resolve_trigger_deployment(client, config, ref);
    out << "  trigger: \"" << ref.full_name() << "\" (deployment " << deployment.id << ", pool \""
        << deployment.work_pool_name << "\"): would create one flow run\n";
  }

  std::vector<FlowRun> due;
  if (pool) {
    due = read_due_runs(client, config, std::chrono::system_clock::now() + config.prefetch);
  }
  out << "  due flow runs (scheduled before now + " << config.prefetch.count()
      << " s): " << due.size() << "\n";
  for (const auto& run : due) {
    out << "    - " << run.name << " (" << run.id << "), expected " << run.expected_start_time
        << ", queue " << run.work_queue_name << "\n";
  }
  out << "  worker: " << config.worker_type << " worker \"" << config.worker_name << "\", at most "
      << config.flow_limit << " at once, " << (config.run_forever ? "until stopped" : "run once")
      << "\n";
  std::vector<std::string> active;
  for (auto type : config.active_state_types) {
    active.emplace_back(to_string(type));
  }
  if (config.wait_for_completion) {
    out << "  wait: until no " << join(active) << " flow run in the pool"
        << (config.wait_timeout.count() > 0
                ? ", at most " + std::to_string(config.wait_timeout.count()) + " s"
                : std::string(", no timeout"))
        << "\n";
  } else {
    out << "  wait: no\n";
  }
  out << "  pause at the end: "
      << (config.auto_pause == AutoPause::kOff     ? "no"
          : config.auto_pause == AutoPause::kForce ? "yes (force)"
                                                   : "yes")
      << "\n";
  return ExitCode::kOk;
}

}  // namespace pc
