#include "monitor/cycle_event.hpp"

#include <exception>
#include <utility>

#include "common/error.hpp"
#include "prefect/events.hpp"
#include "prefect/server_version.hpp"

namespace pc {

using json = nlohmann::json;

bool wants_cycle_event(const CycleSummary& summary) {
  return summary.pool_resumed || summary.exit_code != ExitCode::kOk;
}

json cycle_event(const CycleSummary& summary, const std::string& pool_id) {
  const std::string paused = !summary.pool_paused_at_end   ? "unknown"
                             : *summary.pool_paused_at_end ? "true"
                                                           : "false";
  json resource{{"prefect.resource.id", "prefect.work-pool." + pool_id},
                {"prefect.resource.name", summary.pool},
                {"prefect-cycle.outcome", std::string(exit_code_name(summary.exit_code))},
                {"prefect-cycle.pool-paused", paused}};
  json phases = json::object();
  for (const auto& phase : summary.phases) {
    phases[phase.name] = static_cast<double>(phase.duration.count()) / 1000.0;
  }
  json payload{{"exit_code", to_int(summary.exit_code)},
               {"outcome", std::string(exit_code_name(summary.exit_code))},
               {"message", summary.message},
               {"runs_by_state", summary.runs_by_state()},
               {"pool_resumed", summary.pool_resumed},
               {"pool_paused_at_end",
                summary.pool_paused_at_end ? json(*summary.pool_paused_at_end) : json(nullptr)},
               {"pool_left_resumed_for", summary.pool_left_resumed_for},
               {"duration_seconds", static_cast<double>(summary.duration.count()) / 1000.0},
               {"phase_seconds", std::move(phases)},
               {"worker", summary.worker_name},
               {"version", PREFECT_CYCLE_VERSION}};
  const char* name = summary.exit_code == ExitCode::kOk ? "prefect-cycle.cycle.completed"
                                                        : "prefect-cycle.cycle.failed";
  return make_event(name, std::move(resource), json::array(), std::move(payload));
}

void send_cycle_event(const Config& config, PrefectClient& client, const CycleSummary& summary,
                      const Logger& log) {
  if (!config.emit_events || !wants_cycle_event(summary) || summary.pool.empty()) {
    return;
  }
  const RequestOptions half{.retry = true, .deadline = kCycleEventBudget / 2};
  try {
    // What the cycle has not learned yet is read in one round: the pool's
    // id (a cycle that failed before its preflight read it) and the
    // server's release (one whose worker did not read it).
    std::string pool_id = summary.pool_id;
    std::optional<ServerVersion> version;
    const bool version_known = is_prefect_cloud(config.api_url) || summary.server_version;
    if (summary.server_version) {
      version = ServerVersion::parse(*summary.server_version);
    }
    if (!version_known || pool_id.empty()) {
      std::optional<WorkPool> pool;
      if (version_known) {
        pool = client.read(PrefectClient::work_pool_read(summary.pool), half);
      } else if (!pool_id.empty()) {
        version = ServerVersion::parse(client.read(PrefectClient::server_version_read(), half));
      } else {
        auto [release, found] = client.read_together(half, PrefectClient::server_version_read(),
                                                     PrefectClient::work_pool_read(summary.pool));
        version = ServerVersion::parse(release.get());
        pool = found.get();
      }
      if (pool) {
        pool_id = pool->id;
      }
    }
    if (!features_of(version).events) {
      log.debug("Prefect server without events: no cycle event");
      return;
    }
    if (pool_id.empty()) {
      log.debug("no cycle event: work pool \"" + summary.pool + "\" not found");
      return;
    }
    const json event = cycle_event(summary, pool_id);
    const std::string text = config.redactor->redact(json::array({event}).dump());
    client.write(PrefectClient::events_call(json::parse(text)), half);
    log.debug("sent " + event["event"].get<std::string>() + " for work pool \"" + summary.pool +
              "\"");
  } catch (const Error& e) {
    log.warn(std::string("could not send the cycle event to Prefect: ") + e.what());
  } catch (const std::exception& e) {
    log.warn(std::string("could not send the cycle event to Prefect: ") + e.what());
  }
}

}  // namespace pc
