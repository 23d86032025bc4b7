#pragma once
// Internal to the native worker (worker.hpp): its loop, and the objects the
// loop drives, each with its own state and its own set of runs in flight:
//
//   loop.cpp     the loop: heartbeat, fill the free slots, supervise, stop
//   poll.cpp     the polls of the pool's due runs, and when the worker is done
//   claims.hpp   polled runs -> runs that are ours (lookups, PENDING
//                proposals, WAIT, a lost answer)
//   start.cpp    a claimed run -> its process (job configuration, the
//                ProcessStarter seam: cold or forked warm)
//   cancel.cpp   runs cancelled in Prefect -> their processes stopped
//   reports.hpp  ended processes -> final states and RunRecords
//
// One thread, one loop, each run a small state machine: queued (queue_) ->
// claiming (Claims) -> running (running_) -> reporting (Reports) -> recorded.
// The requests of different runs are in flight at the same time: a run's
// report does not wait for another's claim. Nothing sleeps: a WAIT's delay
// is a claim's due time, and the tries of a call that must not be lost are
// timers of the loop (timers.hpp). The worker is settled when no run is in
// any of these sets.

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "http/retry.hpp"
#include "process/process.hpp"
#include "worker/launch/process_starter.hpp"
#include "worker/native/claims.hpp"
#include "worker/native/reports.hpp"
#include "worker/native/run_journal.hpp"
#include "worker/native/run_updates.hpp"
#include "worker/native/running.hpp"
#include "worker/native/timers.hpp"
#include "worker/worker.hpp"

namespace pc {

class NativeWorker::Impl {
 public:
  Impl(const Config& config, PrefectClient& client, Sleeper& sleeper, WorkPool pool,
       NativeWorkerOptions options);

  WorkerPhaseResult run(const Logger& log);

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  // --- the loop (loop.cpp) ---
  void loop();
  void report_progress(TimePoint now);
  void heartbeat();
  void heartbeat_ended(const std::exception_ptr& error);
  // Calls in flight (updates, heartbeat, re-reads, claims, reports, the
  // cancellation check): the loop looks at them often.
  bool busy() const { return client_.in_flight(); }
  // No run between the queue and its record: none claimed, running or reported.
  bool settled() const { return running_.empty() && claims_.settled() && reports_.settled(); }
  void pump(std::chrono::milliseconds wait);
  void fill_slots();
  void supervise();
  void begin_stop(const std::string& reason);
  // After a failure: stop, and wait until the runs are reported, nothing
  // more can report them, or the grace and a minute have passed.
  void settle_after_failure(const std::string& why);
  bool stopping() const { return !stop_reason_.empty(); }

  // --- polling (poll.cpp) ---
  bool wants_poll(TimePoint now) const;
  // A poll of the pool's due runs, in flight; polled() queues the new ones.
  void poll();
  void polled(Outcome<std::vector<WorkerFlowRun>> answered);
  PrefectClient::Call<std::vector<WorkerFlowRun>> poll_call();
  bool finished() const;
  // A run-once worker whose last process has ended: no run will start any
  // more, only reports are left.
  bool last_lap() const;

  // --- cancellations (cancel.cpp) ---
  void stop_process(Running& r);
  void check_cancellations();
  void cancellations_answered(const Outcome<std::vector<FlowRun>>& cancelled);

  // --- starting processes (start.cpp) ---
  // Real processes, forked warm when PREFECT_CYCLE_WARM_START is on.
  std::shared_ptr<ProcessStarter> real_processes();
  // Claims' `start`: the claimed run's process; one claimed while the cycle
  // stops is started and stopped at once; one that cannot start is CRASHED.
  void start_claimed(const Candidate& c);
  void start(FlowRun run, const Deployment& deployment, const Logger& rlog);

  const Config& config_;
  PrefectClient& client_;
  Sleeper& sleeper_;
  WorkPool pool_;
  NativeWorkerOptions options_;
  SteadyClock steady_clock_;
  const Clock& clock_;  // options_.clock or steady_clock_
  Logger log_;
  Timers timers_;
  RunUpdates updates_;  // labels and infrastructure_pids (run_updates.hpp)
  RunJournal journal_;  // lines and events for Prefect's UI (run_journal.hpp)
  Reports reports_;
  Claims claims_;

  std::chrono::system_clock::time_point horizon_;
  std::deque<FlowRun> queue_;
  std::set<std::string> seen_;
  RunningMap running_;
  // Declared after running_: destroyed (children killed) before the entries
  // their callbacks point to.
  std::shared_ptr<ProcessStarter> processes_;  // options_.starter or real processes
  std::vector<std::pair<std::string, ExitStatus>> exited_;
  TimePoint next_heartbeat_{};
  std::optional<ApiClient::CallId> heartbeat_call_;  // a heartbeat in flight
  bool cancel_check_in_flight_ = false;
  bool poll_in_flight_ = false;
  TimePoint next_poll_{};
  TimePoint next_cancel_check_{};
  TimePoint next_progress_{};
  bool exhausted_ = false;
  bool in_last_lap_ = false;  // last_lap() was true once: the journal and the cycle were told
  int empty_polls_ = 0;       // before the first start
  std::string stop_reason_;   // why the worker is stopping; empty: it is not
  int started_ = 0;
  // A failed poll (run forever) is tried again 1 s, 2 s, 4 s … later, up to
  // a minute; PREFECT_WORKER_MAX_CONSECUTIVE_FAILURES in a row end the worker.
  FailureStreak poll_failures_{std::chrono::seconds(1), std::chrono::seconds(60)};
  // A failed heartbeat: again 1 s, 2 s, 4 s … later, up to 32 s or the interval.
  FailureStreak heartbeat_failures_;  // set up by the constructor
};

}  // namespace pc
