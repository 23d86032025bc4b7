#pragma once
// Stale runs: a cycle killed with SIGKILL (or a container that died) cannot
// report its runs; they stay PENDING or RUNNING in Prefect for ever. At start
// the native worker looks for runs of its pool in an active state that it can
// prove are orphans, and marks them CRASHED:
//   - infrastructure_pid "<this host>:<pid>" and no such process here, or
//   - labelled with this worker's name (prefect.worker.name) while that
//     worker's last heartbeat is older than three intervals (or it has none):
//     the cycle that ran them is gone, wherever it ran.
// Runs whose process may still be alive are left alone.

#include <string>

#include "config/config.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

// Returns how many runs were marked CRASHED. API failures are logged, not
// thrown: recovery must never stop a cycle.
int recover_stale_runs(const Config& config, PrefectClient& client, const std::string& hostname,
                       const Logger& log);

// Whether a process with this pid exists on this machine (not a zombie).
bool process_exists(long pid);

}  // namespace pc
