#pragma once
// Stale runs: a cycle killed with SIGKILL (or a container that died) cannot
// report its runs; they stay PENDING or RUNNING in Prefect for ever. At start
// the native worker looks for runs of its pool in an active state that it can
// prove are orphans, and marks them CRASHED with the reason:
//   - infrastructure_pid "<this host>:<pid>" and no such process here, or
//   - claimed by a prefect-cycle worker whose worker row stopped heartbeating
//     (last heartbeat older than three of its intervals): the cycle that
//     supervised the run is gone, wherever it ran -- another container, pod
//     or host, with another hostname and worker name.
// Who claimed a run: its `prefect-cycle.claimed-by` label where the server
// has flow-run labels (Prefect 3.2+); else the message of its PENDING state,
// which every prefect-cycle claim carries (kClaimMarker), read from the
// run's state history -- every supported server stores and serves it. A run
// whose process is alive here, whose claimer still heartbeats, or whose
// claimer is unknown (Prefect's own workers, a person) is left alone.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

// The PENDING message of a prefect-cycle claim: kClaimMarker + name + "\"".
inline constexpr std::string_view kClaimMarker = "claimed by prefect-cycle worker \"";
// The label naming the prefect-cycle worker that claimed the run.
inline constexpr std::string_view kClaimLabel = "prefect-cycle.claimed-by";

std::string claim_message(const std::string& worker_name);
// The worker named by a claim message; nullopt for any other message.
std::optional<std::string> claimer_from_message(const std::string& message);

// What recovery knows about the pool's workers, by name.
struct WorkerLiveness {
  bool found = false;
  bool silent = false;    // last heartbeat older than three intervals, or none
  std::string last_seen;  // the row's last_heartbeat_time
};

// The decision for one active run: why it is stale, or "" to leave it alone.
// `claimer` is the prefect-cycle worker that claimed it, if known; `claimer_row`
// that worker's row; `own_name` this cycle's worker name; `process_alive`
// answers for a pid on this host.
std::string stale_reason(const FlowRun& run, const std::string& hostname,
                         const std::optional<std::string>& claimer,
                         const WorkerLiveness& claimer_row, const std::string& own_name,
                         bool (*process_alive)(long pid));

// Returns how many runs were marked CRASHED. API failures are logged, not
// thrown: recovery must never stop a cycle. `candidates`: the runs of
// stale_candidates_filter() already read (with other reads), or their
// error; none: read here.
// `marked` hears of each run marked CRASHED, and why.
int recover_stale_runs(
    const Config& config, PrefectClient& client, const std::string& hostname, const Logger& log,
    std::optional<Outcome<std::vector<FlowRun>>> candidates = std::nullopt,
    const std::function<void(const FlowRun& run, const std::string& why)>& marked = {});

// The runs recover_stale_runs() judges: the pool's PENDING and RUNNING ones.
FlowRunFilter stale_candidates_filter(const Config& config);

// Whether a process with this pid exists on this machine (not a zombie).
bool process_exists(long pid);

}  // namespace pc
