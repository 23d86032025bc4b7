#include "prefect/events.hpp"

#include <set>
#include <utility>

#include "prefect/client.hpp"

namespace pc {

using json = nlohmann::json;

std::string slugify(const std::string& name) {
  std::string slug;
  bool dash = false;
  for (const char c : name) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      if (dash && !slug.empty()) {
        slug += '-';
      }
      dash = false;
      slug += lower;
    } else {
      dash = true;
    }
  }
  return slug;
}

json related_resource(const std::string& kind, const std::string& id, const std::string& name,
                      const std::string& role) {
  json resource{{"prefect.resource.id", "prefect." + kind + "." + id},
                {"prefect.resource.role", role}};
  if (!name.empty()) {
    resource["prefect.resource.name"] = name;
  }
  return resource;
}

json worker_resource(const WorkerEventContext& worker) {
  return {{"prefect.resource.id",
           "prefect.worker." + worker.worker_type + "." + slugify(worker.worker_name)},
          {"prefect.resource.name", worker.worker_name},
          {"prefect.version", worker.version},
          {"prefect.worker-type", worker.worker_type}};
}

namespace {

json pool_related(const WorkerEventContext& worker) {
  return related_resource("work-pool", worker.pool_id, worker.pool_name, "work-pool");
}

}  // namespace

json run_related(const WorkerEventContext& worker, const RunResources& r) {
  json related = json::array();
  if (!r.run.deployment_id.empty()) {
    related.push_back(
        related_resource("deployment", r.run.deployment_id, r.deployment_name, "deployment"));
  }
  if (!r.run.flow_id.empty()) {
    related.push_back(related_resource("flow", r.run.flow_id, r.flow_name, "flow"));
  }
  related.push_back(related_resource("flow-run", r.run.id, r.run.name, "flow-run"));
  for (const auto& tag : std::set<std::string>(r.run.tags.begin(), r.run.tags.end())) {
    related.push_back(
        {{"prefect.resource.id", "prefect.tag." + tag}, {"prefect.resource.role", "tag"}});
  }
  if (!r.run.work_queue_id.empty()) {
    related.push_back(
        related_resource("work-queue", r.run.work_queue_id, r.run.work_queue_name, "work-queue"));
  }
  related.push_back(pool_related(worker));
  return related;
}

json make_event(const std::string& event, json resource, json related, json payload,
                const std::optional<std::string>& follows) {
  json e{{"id", new_uuid4()},
         {"occurred", format_iso8601(std::chrono::system_clock::now())},
         {"event", event},
         {"resource", std::move(resource)},
         {"related", std::move(related)},
         {"payload", std::move(payload)}};
  if (follows) {
    e["follows"] = *follows;
  }
  return e;
}

json worker_started_event(const WorkerEventContext& worker) {
  return make_event("prefect.worker.started", worker_resource(worker),
                    json::array({pool_related(worker)}));
}

json worker_stopped_event(const WorkerEventContext& worker,
                          const std::optional<std::string>& started_id) {
  return make_event("prefect.worker.stopped", worker_resource(worker),
                    json::array({pool_related(worker)}), json::object(), started_id);
}

json run_submitted_event(const WorkerEventContext& worker, const RunResources& run) {
  return make_event("prefect.worker.submitted-flow-run", worker_resource(worker),
                    run_related(worker, run));
}

json run_executed_event(const WorkerEventContext& worker, const RunResources& run,
                        const std::string& identifier, int status_code,
                        const std::optional<std::string>& submitted_id) {
  json related = run_related(worker, run);
  for (auto& resource : related) {
    if (resource["prefect.resource.role"] == "flow-run") {
      resource["prefect.infrastructure.identifier"] = identifier;
      resource["prefect.infrastructure.status-code"] = std::to_string(status_code);
    }
  }
  return make_event("prefect.worker.executed-flow-run", worker_resource(worker), std::move(related),
                    json::object(), submitted_id);
}

json run_log_record(const std::string& flow_run_id, RunLogLevel level, const std::string& message,
                    std::chrono::system_clock::time_point at) {
  return {{"name", kWorkerLoggerName},
          {"level", static_cast<int>(level)},
          {"message", message},
          {"timestamp", format_iso8601(at)},
          {"flow_run_id", flow_run_id}};
}

}  // namespace pc
