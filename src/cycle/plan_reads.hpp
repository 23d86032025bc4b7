#pragma once
// What a cycle reads before it changes anything, one reader each for the
// cycle, `run --dry-run` and `doctor`: the trigger deployments and the flow
// runs due in the pool.

#include <chrono>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "prefect/client.hpp"

namespace pc {

// The deployment PREFECT_TRIGGER_DEPLOYMENTS names; std::nullopt when the
// server has none of that name.
std::optional<Deployment> find_trigger_deployment(PrefectClient& client, const DeploymentRef& ref);

// As find_trigger_deployment, but a missing one is a usage error (exit 2)
// naming the variable, the deployment and the API.
Deployment resolve_trigger_deployment(PrefectClient& client, const Config& config,
                                      const DeploymentRef& ref);

// The SCHEDULED runs of the pool in the configured queues (all when none is
// configured) expected before `horizon`: the runs a worker started now would
// take. Read without get_scheduled_flow_runs, which marks the polled queues
// READY: this read changes nothing on the server. At most 50 pages; the
// first one may have been read already (with other reads, through
// due_runs_filter), then only the next ones are.
std::vector<FlowRun> read_due_runs(PrefectClient& client, const Config& config,
                                   std::chrono::system_clock::time_point horizon,
                                   std::optional<std::vector<FlowRun>> first_page = std::nullopt);

// The filter of read_due_runs' first page.
FlowRunFilter due_runs_filter(const Config& config);

}  // namespace pc
