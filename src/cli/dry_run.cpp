#include "cli/dry_run.hpp"

#include "common/error.hpp"
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
    auto deployment = client.read_deployment_by_name(ref.flow, ref.deployment);
    if (!deployment) {
      throw usage_error("PREFECT_TRIGGER_DEPLOYMENTS: deployment \"" + ref.full_name() +
                            "\" not found at " + config.api_url,
                        Hint::kDeploymentNotFound);
    }
    out << "  trigger: \"" << ref.full_name() << "\" (deployment " << deployment->id << ", pool \""
        << deployment->work_pool_name << "\"): would create one flow run\n";
  }

  const auto horizon = std::chrono::system_clock::now() + config.prefetch;
  FlowRunFilter filter;
  filter.work_pool_names = {config.work_pool};
  filter.state_types = {StateType::kScheduled};
  std::vector<FlowRun> due;
  if (pool) {
    for (int page = 0; page < 50; ++page) {
      filter.offset = page * filter.limit;
      auto runs = client.read_flow_runs(filter);
      for (auto& run : runs) {
        auto when = parse_iso8601(run.expected_start_time);
        bool in_queue = config.work_queues.empty() ||
                        std::find(config.work_queues.begin(), config.work_queues.end(),
                                  run.work_queue_name) != config.work_queues.end();
        if (in_queue && (!when || *when <= horizon)) {
          due.push_back(std::move(run));
        }
      }
      if (static_cast<int>(runs.size()) < filter.limit) {
        break;
      }
    }
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
