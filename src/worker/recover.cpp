#include "worker/recover.hpp"

#include <signal.h>

#include <cerrno>
#include <fstream>

#include "common/error.hpp"

namespace pc {
namespace {

using SysClock = std::chrono::system_clock;

// Why the run is stale, or "" when it may still be alive.
std::string stale_reason(const FlowRun& run, const std::string& hostname,
                         const std::string& worker_name, bool worker_silent,
                         const std::string& silent_since) {
  const std::string& infra = run.infrastructure_pid;
  auto colon = infra.rfind(':');
  if (colon != std::string::npos && infra.substr(0, colon) == hostname) {
    long pid = std::strtol(infra.c_str() + colon + 1, nullptr, 10);
    if (pid > 0 && !process_exists(pid)) {
      return "its process " + infra + " no longer exists (the cycle that started it was killed)";
    }
    if (pid > 0) {
      return "";  // alive here: not ours to judge
    }
  }
  auto label = run.labels.find("prefect.worker.name");
  if (worker_silent && label != run.labels.end() && label->is_string() &&
      label->get<std::string>() == worker_name) {
    return "its worker \"" + worker_name + "\" stopped heartbeating" +
           (silent_since.empty() ? "" : " (last heartbeat " + silent_since + ")") +
           " and no process is known to run it";
  }
  return "";
}

}  // namespace

bool process_exists(long pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    return false;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (stat >> pid_field >> comm >> state) {
    return state != "Z" && state != "X";
  }
  return true;  // cannot tell: assume alive
}

int recover_stale_runs(const Config& config, PrefectClient& client, const std::string& hostname,
                       const Logger& log) {
  int recovered = 0;
  try {
    FlowRunFilter filter;
    filter.work_pool_names = {config.work_pool};
    filter.state_types = {StateType::kPending, StateType::kRunning};
    const auto runs = client.read_flow_runs(filter);
    if (runs.empty()) {
      return 0;  // the usual case: one request
    }
    // Our worker row as the previous cycle with this name left it.
    bool worker_silent = true;
    std::string silent_since;
    for (const auto& worker : client.read_workers(config.work_pool)) {
      if (worker.name != config.worker_name) {
        continue;
      }
      auto last = parse_iso8601(worker.last_heartbeat_time);
      auto interval = std::chrono::seconds(
          worker.heartbeat_interval_seconds > 0 ? worker.heartbeat_interval_seconds : 30);
      worker_silent = !last || SysClock::now() - *last > 3 * interval;
      silent_since = worker.last_heartbeat_time;
    }
    for (const auto& run : runs) {
      std::string why =
          stale_reason(run, hostname, config.worker_name, worker_silent, silent_since);
      if (why.empty()) {
        continue;
      }
      StateCreate crashed{StateType::kCrashed, "",
                          "prefect-cycle found this flow run stale: " + why + "."};
      auto result = client.set_flow_run_state(run.id, crashed, true, new_uuid4());
      log.warn("stale flow run " + run.name + " (" + run.id + "): " + why + "; marked CRASHED (" +
                   std::string(to_string(result.status)) + ")",
               {{"flow_run_id", run.id}});
      ++recovered;
    }
  } catch (const Error& e) {
    log.warn(std::string("could not look for stale flow runs: ") + e.what());
  }
  return recovered;
}

}  // namespace pc
