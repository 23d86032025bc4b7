#include "worker/native/recover.hpp"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <map>

#include "common/error.hpp"

namespace pc {
namespace {

using SysClock = std::chrono::system_clock;

// The claimer named by the run's labels, if they name one we may judge: our
// own label, or (runs of earlier versions) Prefect's worker-name label when it
// is our own name.
std::optional<std::string> claimer_from_labels(const FlowRun& run, const std::string& own_name) {
  auto label = run.labels.find(std::string(kClaimLabel));
  if (label != run.labels.end() && label->is_string()) {
    return label->get<std::string>();
  }
  auto worker = run.labels.find("prefect.worker.name");
  if (worker != run.labels.end() && worker->is_string() && *worker == own_name) {
    return own_name;
  }
  return std::nullopt;
}

// Whether the run's labels name a worker at all: then its history need not be
// read (a prefect-cycle claim on a server with labels carries kClaimLabel).
bool labelled_by_a_worker(const FlowRun& run) {
  return run.labels.contains("prefect.worker.name") ||
         run.labels.contains(std::string(kClaimLabel));
}

std::map<std::string, WorkerLiveness> read_liveness(PrefectClient& client,
                                                    const std::string& pool) {
  std::map<std::string, WorkerLiveness> rows;
  const auto now = SysClock::now();
  for (const auto& worker : client.read_workers(pool)) {
    auto since = worker.since_heartbeat(now);
    rows[worker.name] = {.found = true,
                         .silent = !since || *since > 3 * worker.heartbeat_interval(),
                         .last_seen = worker.last_heartbeat_time};
  }
  return rows;
}

}  // namespace

std::string claim_message(const std::string& worker_name) {
  return std::string(kClaimMarker) + worker_name + "\"";
}

std::optional<std::string> claimer_from_message(const std::string& message) {
  if (message.rfind(kClaimMarker, 0) != 0) {
    return std::nullopt;
  }
  auto end = message.find('"', kClaimMarker.size());
  if (end == std::string::npos || end == kClaimMarker.size()) {
    return std::nullopt;
  }
  return message.substr(kClaimMarker.size(), end - kClaimMarker.size());
}

std::string stale_reason(const FlowRun& run, const std::string& hostname,
                         const std::optional<std::string>& claimer,
                         const WorkerLiveness& claimer_row, const std::string& own_name,
                         bool (*process_alive)(long pid)) {
  const std::string& infra = run.infrastructure_pid;
  auto colon = infra.rfind(':');
  if (colon != std::string::npos && infra.substr(0, colon) == hostname) {
    long pid = std::strtol(infra.c_str() + colon + 1, nullptr, 10);
    if (pid > 0 && !process_alive(pid)) {
      return "its process " + infra + " no longer exists (the cycle that started it was killed)";
    }
    if (pid > 0) {
      return "";  // alive here: not ours to judge
    }
  }
  if (!claimer) {
    return "";  // not claimed by prefect-cycle, as far as we can tell
  }
  if (claimer_row.found && !claimer_row.silent) {
    return "";  // its worker is alive: it reports the run itself
  }
  if (claimer_row.found) {
    return "prefect-cycle worker \"" + *claimer + "\", which claimed it, stopped heartbeating" +
           (claimer_row.last_seen.empty() ? ""
                                          : " (last heartbeat " + claimer_row.last_seen + ")") +
           (infra.empty() ? "" : "; its process " + infra + " cannot be alive without it") +
           " (the cycle that ran it was killed, e.g. its container stopped)";
  }
  if (*claimer == own_name) {
    return "its worker \"" + own_name +
           "\" (this cycle's name) left no worker row: the cycle that claimed it is gone";
  }
  return "";  // the claimer's row is gone: we cannot tell
}

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

FlowRunFilter stale_candidates_filter(const Config& config) {
  FlowRunFilter filter;
  filter.work_pool_names = {config.work_pool};
  filter.state_types = {StateType::kPending, StateType::kRunning};
  return filter;
}

int recover_stale_runs(
    const Config& config, PrefectClient& client, const std::string& hostname, const Logger& log,
    std::optional<Outcome<std::vector<FlowRun>>> candidates,
    const std::function<void(const FlowRun& run, const std::string& why)>& marked) {
  int recovered = 0;
  try {
    const auto runs = candidates ? std::move(candidates->get())
                                 : client.read_flow_runs(stale_candidates_filter(config));
    if (runs.empty()) {
      return 0;  // the usual case: one request
    }
    // The workers' rows as the cycles that own them left them: read before
    // our own first heartbeat.
    const auto rows = read_liveness(client, config.work_pool);
    for (const auto& run : runs) {
      std::optional<std::string> claimer = claimer_from_labels(run, config.worker_name);
      if (!claimer && !labelled_by_a_worker(run)) {
        // No labels (Prefect < 3.2, or our label update failed): the claim's
        // PENDING message says who took it.
        for (const auto& state : client.read_flow_run_states(run.id)) {
          if (state.type == StateType::kPending) {
            if (auto name = claimer_from_message(state.message)) {
              claimer = name;
            }
          }
        }
      }
      WorkerLiveness row;
      if (claimer) {
        if (auto it = rows.find(*claimer); it != rows.end()) {
          row = it->second;
        }
      }
      std::string why =
          stale_reason(run, hostname, claimer, row, config.worker_name, &process_exists);
      if (why.empty()) {
        log.debug("active flow run " + run.name + " (" + run.id + ") is not stale" +
                  (claimer ? " (claimed by \"" + *claimer + "\")" : ""));
        continue;
      }
      StateCreate crashed{StateType::kCrashed, "",
                          "prefect-cycle found this flow run stale: " + why + "."};
      auto result = client.set_flow_run_state(run.id, crashed, true, new_uuid4());
      log.warn("stale flow run " + run.name + " (" + run.id + "): " + why + "; marked CRASHED (" +
                   std::string(to_string(result.status)) + ")",
               {{"flow_run_id", run.id}});
      if (marked) {
        marked(run, why);
      }
      ++recovered;
    }
  } catch (const Error& e) {
    log.warn(std::string("could not look for stale flow runs: ") + e.what());
  }
  return recovered;
}

}  // namespace pc
