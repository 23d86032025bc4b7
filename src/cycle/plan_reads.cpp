#include "cycle/plan_reads.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace pc {

std::optional<Deployment> find_trigger_deployment(PrefectClient& client, const DeploymentRef& ref) {
  return client.read_deployment_by_name(ref.flow, ref.deployment);
}

Deployment resolve_trigger_deployment(PrefectClient& client, const Config& config,
                                      const DeploymentRef& ref) {
  auto deployment = find_trigger_deployment(client, ref);
  if (!deployment) {
    throw usage_error("PREFECT_TRIGGER_DEPLOYMENTS: deployment \"" + ref.full_name() +
                          "\" not found at " + config.api_url,
                      Hint::kDeploymentNotFound);
  }
  return std::move(*deployment);
}

FlowRunFilter due_runs_filter(const Config& config) {
  FlowRunFilter filter;
  filter.work_pool_names = {config.work_pool};
  filter.state_types = {StateType::kScheduled};
  return filter;
}

std::vector<FlowRun> read_due_runs(PrefectClient& client, const Config& config,
                                   std::chrono::system_clock::time_point horizon,
                                   std::optional<std::vector<FlowRun>> first_page) {
  constexpr int kMostPages = 50;
  FlowRunFilter filter = due_runs_filter(config);
  const auto& queues = config.work_queues;
  std::vector<FlowRun> due;
  for (int page = 0; page < kMostPages; ++page) {
    filter.offset = page * filter.limit;
    auto runs = page == 0 && first_page ? std::move(*first_page) : client.read_flow_runs(filter);
    const bool last_page = static_cast<int>(runs.size()) < filter.limit;
    for (auto& run : runs) {
      const auto when = parse_iso8601(run.expected_start_time);
      const bool in_queue = queues.empty() || std::find(queues.begin(), queues.end(),
                                                        run.work_queue_name) != queues.end();
      if (in_queue && (!when || *when <= horizon)) {
        due.push_back(std::move(run));
      }
    }
    if (last_page) {
      break;
    }
  }
  return due;
}

}  // namespace pc
