#pragma once
// The native run-once process worker, protocol-compatible with Prefect's
// ProcessWorker (prefect.workers.process, prefect.workers.base):
//
//   heartbeat  at start and every PREFECT_WORKER_HEARTBEAT_SECONDS, also while
//              waiting for its runs
//   poll       get_scheduled_flow_runs(scheduled_before = start + prefetch) in
//              server order; run-once re-polls with the same horizon until it
//              has seen every run that was due, so it drains them all; drain
//              and run-forever modes poll every PREFECT_WORKER_QUERY_SECONDS
//              with a moving horizon
//   claim      PENDING proposal (force=false, fresh transition_id): ACCEPT +
//              PENDING -> start; WAIT -> retry after delay_seconds;
//              ABORT/REJECT -> skip (another worker has it, or a limit)
//   start      job configuration from the pool template + deployment + run
//              job variables; the command in its own process group; the
//              infrastructure_pid recorded as "<host>:<pid>"
//   exit       non-zero and the run not terminal -> CRASHED with the exit code
//              and its meaning
//   cancel     runs of ours in CANCELLING -> SIGTERM, grace, SIGKILL, CANCELLED
//   stop       (signal, wait timeout) every process gets SIGTERM, the grace
//              period, SIGKILL; runs still PENDING go back to SCHEDULED, runs
//              RUNNING end CRASHED with the reason. Nothing stays PENDING or
//              RUNNING.

#include <filesystem>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "config/config.hpp"
#include "http/retry.hpp"
#include "prefect/client.hpp"
#include "worker/launch/process_starter.hpp"
#include "worker/phase.hpp"

namespace pc {

struct NativeWorkerOptions {
  Environment child_env;                      // environment of every flow process
  std::filesystem::path default_working_dir;  // empty = a fresh temp dir per run
  std::string hostname;
  // The cycle's: when to stop ("SIGTERM received"), and the last lap.
  WorkerHooks hooks;
  // Seams for tests: null = real processes (ProcessStarterImpl) and
  // std::chrono::steady_clock. The clock must outlive the worker.
  std::shared_ptr<ProcessStarter> starter;
  const Clock* clock = nullptr;
};

class NativeWorker final : public WorkerPhase {
 public:
  NativeWorker(const Config& config, PrefectClient& client, Sleeper& sleeper, WorkPool pool,
               NativeWorkerOptions options);
  ~NativeWorker() override;

  WorkerPhaseResult run(const Logger& log) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pc
