#pragma once
// Prefect's events and log records as its own worker shapes them, so that
// Prefect's UI links them to the run, the pool and the deployment, and its
// automations can trigger on them (prefect/workers/base.py: the worker's
// resource, its related resources with their roles, `follows`). Pure
// builders: nothing here sends (worker/native/run_journal.hpp,
// monitor/cycle_event.hpp).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "prefect/types.hpp"

namespace pc {

// The logger name of Prefect's worker lines on a run's Logs tab.
inline constexpr const char* kWorkerLoggerName = "prefect.flow_runs.worker";

// Prefect's slugify of a worker name ("My Worker_1" -> "my-worker-1"): lower
// case, runs of anything but [a-z0-9] as one '-', none at either end.
std::string slugify(const std::string& name);

// {"prefect.resource.id": "prefect.<kind>.<id>", "prefect.resource.role":
// role, "prefect.resource.name": name} (object_as_related_resource); the
// name is left out when empty.
nlohmann::json related_resource(const std::string& kind, const std::string& id,
                                const std::string& name, const std::string& role);

// What a worker event is about and what it touches.
struct WorkerEventContext {
  std::string worker_name;
  std::string worker_type;  // the pool's type: "process"
  std::string version;      // prefect-cycle's
  std::string pool_id;
  std::string pool_name;
};

// The worker as an event's resource: prefect.worker.<type>.<slug of name>.
nlohmann::json worker_resource(const WorkerEventContext& worker);

// What a flow run's worker events relate to, in the order Prefect's worker
// lists them: the deployment, the flow, the flow run (roles = kinds), the
// run's tags (role "tag"), the work queue (when the run names its id), the
// work pool. `flow_name` may be empty.
struct RunResources {
  FlowRun run;
  std::string deployment_name;
  std::string flow_name;
};
nlohmann::json run_related(const WorkerEventContext& worker, const RunResources& run);

// One event: a fresh id, `occurred` now (UTC, microseconds), the resource,
// the related resources, the payload, and `follows` (the id of an event known
// to have happened before it) when given.
nlohmann::json make_event(const std::string& event, nlohmann::json resource, nlohmann::json related,
                          nlohmann::json payload = nlohmann::json::object(),
                          const std::optional<std::string>& follows = std::nullopt);

// prefect.worker.started / .stopped (the stopped one follows the started one).
nlohmann::json worker_started_event(const WorkerEventContext& worker);
nlohmann::json worker_stopped_event(const WorkerEventContext& worker,
                                    const std::optional<std::string>& started_id);
// prefect.worker.submitted-flow-run, and .executed-flow-run, which follows it
// and adds prefect.infrastructure.identifier (the pid) and
// prefect.infrastructure.status-code (Prefect's status code: -9 for SIGKILL)
// to the flow-run resource.
nlohmann::json run_submitted_event(const WorkerEventContext& worker, const RunResources& run);
nlohmann::json run_executed_event(const WorkerEventContext& worker, const RunResources& run,
                                  const std::string& identifier, int status_code,
                                  const std::optional<std::string>& submitted_id);

// A record of POST /logs/: Prefect's worker logger, the level as Python's
// number (10 debug, 20 info, 30 warning, 40 error), the time now. Only the
// fields every supported server accepts (LogCreate of 2.20 and 3.x).
enum class RunLogLevel { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40 };
nlohmann::json run_log_record(const std::string& flow_run_id, RunLogLevel level,
                              const std::string& message, std::chrono::system_clock::time_point at);

}  // namespace pc
