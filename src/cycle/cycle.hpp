#pragma once
// The cycle: a linear list of phases.
//
//   preflight  checks that can fail the cycle, before anything changes on the
//              server: the pool exists, trigger deployments exist, repository,
//              code sync, requirements, database
//   resume     PATCH the pool is_paused=false
//   trigger    create one flow run per configured deployment
//   worker     run the due flow runs (native worker or Prefect's worker CLI)
//   wait       poll until no run of the pool is in an active state; the wait
//              timeout counts from the start of the worker phase, because a
//              run-once worker itself waits for the runs it started
//   pause      PATCH the pool is_paused=true -- on every path once resume was tried
//
// A stop signal skips the remaining phases but not the pause.

#include <functional>
#include <memory>

#include "common/clock.hpp"
#include "common/hint.hpp"
#include "config/config.hpp"
#include "cycle/summary.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"
#include "repo/preflight.hpp"
#include "worker/phase.hpp"

namespace pc {

struct CycleDeps {
  PrefectClient& client;
  // The time seam (common/clock.hpp): the wait, its timeout, the pause's tries.
  const Clock& clock;
  Sleeper& sleeper;
  // Runs the repository, code sync and database checks (throws on failure).
  std::function<PreflightReport(const Logger&)> preflight;
  // Builds the worker once the preflight has said what the flows need, with
  // the cycle's hooks (worker/phase.hpp: when to stop, its last lap).
  std::function<std::unique_ptr<WorkerPhase>(const WorkPool&, const PreflightReport&, WorkerHooks)>
      make_worker;
  // Whether a stop signal arrived, and which one (SIGINT/SIGTERM).
  std::function<int()> stop_signal;
  // A second signal: hurry (one short try of the pause), but still pause.
  std::function<bool()> hurry;
  // The summary is complete: told while the cycle's last request (the
  // DELETE of its worker row) is in flight, so that a request made here
  // (the cycle's event, monitor/cycle_event.hpp) costs no round trip more.
  std::function<void(const CycleSummary&)> ended = nullptr;
};

// Runs one cycle and fills `summary`; returns the exit code. Never throws for
// failures of the cycle itself (they become the exit code and summary.message).
ExitCode run_cycle(const Config& config, const Logger& log, CycleDeps& deps, CycleSummary& summary);

}  // namespace pc
