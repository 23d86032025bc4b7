#pragma once
// The worker phase seam: what the cycle asks of a worker (run the due flow
// runs of the pool, then return) and what a worker reports back. Implemented
// by the native process worker (worker.hpp), Prefect's worker CLI
// (cli_worker.hpp), or a fake in tests. The cycle depends on this file; nothing
// here depends on the cycle.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/exit_code.hpp"
#include "common/hint.hpp"
#include "log/logger.hpp"
#include "prefect/types.hpp"

namespace pc {

// One flow run the cycle triggered, claimed or saw due, with its state at the end.
struct RunRecord {
  std::string id;
  std::string name;
  std::string state_type;  // "COMPLETED", ...; "UNKNOWN" if it could not be read
  std::string state_name;
  std::string message;
};

// The record of `run` in `state` (its current one, or one the server just
// accepted for it); no state: UNKNOWN.
inline RunRecord run_record(const FlowRun& run, const std::optional<State>& state) {
  RunRecord record{run.id, run.name, "UNKNOWN", "", ""};
  if (state) {
    record.state_type = std::string(to_string(state->type));
    record.state_name = state->name;
    record.message = state->message;
  }
  return record;
}

// What the worker phase reports back to the cycle.
struct WorkerPhaseResult {
  // Flow runs the worker claimed, with their final state as it saw them. Empty
  // when the worker cannot tell (Prefect's worker CLI).
  std::vector<RunRecord> runs;
  // Set when the worker itself failed (not a flow run): the cycle's exit code.
  std::optional<ExitCode> failure;
  std::string failure_message;
  Hint failure_hint = Hint::kWorkerCli;  // what to change about `failure`

  // False when the worker never heartbeated (nothing was due): it left no
  // worker row for the pause phase to delete.
  bool registered = true;

  // The Prefect server's release, when the worker read it (the cycle's
  // event needs no read of its own then).
  std::optional<std::string> server_version;
};

// What the cycle gives a worker to call.
struct WorkerHooks {
  // "" while the worker may go on; else why it must stop (a signal arrived,
  // the wait timeout passed): it then stops and accounts for its runs.
  std::function<std::string()> stop_reason;
  // Called once, when no flow run of the worker will start or run any more
  // (a run-once worker's last process reaped), while the last final states
  // are still being read: the cycle starts its first count of the pool's
  // active runs there (CycleRun::start_first_count). Not called by a worker
  // that was stopped (the cycle does not wait then) or that cannot tell
  // (Prefect's worker CLI). May be null.
  std::function<void()> last_lap;
};

// The native worker, Prefect's worker CLI, or a fake.
class WorkerPhase {
 public:
  virtual ~WorkerPhase() = default;
  virtual WorkerPhaseResult run(const Logger& log) = 0;
};

}  // namespace pc
