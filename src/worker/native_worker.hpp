#pragma once
// Internal to the native worker (worker.hpp): the state it keeps and its
// steps, one file per job:
//
//   worker.cpp  the loop: heartbeat, poll, supervise, cancellations, stop
//   claim.cpp   from the queue of polled runs to runs that are ours: re-read,
//               PENDING proposals, WAIT/ABORT/REJECT, lost answers, labels
//   launch.cpp  job configuration -> environment, working directory, process
//   report.cpp  after a process ended: the final state (final_state.hpp),
//               the final reports and the RunRecords of the summary
//
// One thread, one loop, each run a small state machine: due (queue_) ->
// re-read (claiming_, its lookups in flight) -> claim (its proposal in
// flight) -> launch -> running_ -> report (reporting_, its read and final
// proposal in flight) -> records_. The requests of different runs are in
// flight at the same time: a run's report does not wait for another's claim.
// Nothing sleeps: a WAIT's delay is a claim's due time, and the tries of a
// call that must not be lost (start_tried) are timers of the loop (after());
// a run stays counted in claiming_ or reporting_ until its last answer.

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "http/retry.hpp"
#include "process/process.hpp"
#include "worker/final_state.hpp"
#include "worker/flow_output.hpp"
#include "worker/launcher.hpp"
#include "worker/run_journal.hpp"
#include "worker/run_updates.hpp"
#include "worker/worker.hpp"

namespace pc {

class NativeWorker::Impl {
 public:
  Impl(const Config& config, PrefectClient& client, Sleeper& sleeper, WorkPool pool,
       NativeWorkerOptions options);

  WorkerPhaseResult run(const Logger& log);
  // Real processes, forked warm when PREFECT_CYCLE_WARM_START is on.
  std::shared_ptr<ProcessLauncher> real_processes();

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  // A run whose process we started (or failed to start).
  struct Running {
    Running(FlowRun flow_run, const Logger& run_log)
        : run(std::move(flow_run)), log(run_log), out(run_log), err(run_log) {}

    FlowRun run;
    Logger log;
    FlowOutput out;  // the process's stdout, as log events
    FlowOutput err;  // its stderr
    ProcessLauncher::Id process = 0;
    std::string spawn_error;  // the command could not be started
    std::optional<std::filesystem::path> temp_dir;
    bool stream_output = true;
    bool cancelling = false;  // the run was cancelled in Prefect
    std::string stop_reason;  // the cycle is stopping it
    TimePoint started;
  };

  // A run on its way from the poll to its process.
  struct Candidate {
    FlowRun run;
    Deployment deployment;
    Logger log;
    std::string transition_id;
    int waits = 0;    // WAIT answers so far
    TimePoint due{};  // when its proposal may go (after a WAIT: a timer)
  };

  // --- the loop (worker.cpp) ---
  void loop();
  // A timer of the loop: `fire` runs from the first supervision round after
  // `delay` (a retry's delay, never a sleep that stalls the other runs).
  void after(std::chrono::milliseconds delay, std::function<void()> fire);
  void fire_timers();
  void report_progress(TimePoint now);
  void heartbeat();
  void heartbeat_ended(const std::exception_ptr& error);
  // Calls in flight (updates, heartbeat, re-reads, claims, reports, the
  // cancellation check): the loop looks at them often.
  bool busy() const { return client_.in_flight(); }
  // No run between the queue and its record: none claimed, running or reported.
  bool settled() const { return running_.empty() && claiming_ == 0 && reporting_ == 0; }
  void pump(std::chrono::milliseconds wait);
  bool wants_poll(TimePoint now) const;
  // A poll of the pool's due runs, in flight; polled() queues the new ones.
  void poll();
  void polled(Outcome<std::vector<WorkerFlowRun>> answered);
  PrefectClient::Read<std::vector<WorkerFlowRun>> poll_read();
  bool finished() const;
  void supervise();
  void stop_process(Running& r);
  void check_cancellations();
  void cancellations_answered(const Outcome<std::vector<FlowRun>>& cancelled);
  void begin_stop(const std::string& reason);
  bool stopping() const { return !stop_reason_.empty(); }

  // Reads that must not be lost (final proposals, the read after a lost
  // claim), started together; those that failed are started again together
  // after `tries`' delays, as timers of the loop. `failed` hears of each
  // failure that is tried again (the read's index, the attempt, the delay,
  // the error); `done` gets every read's last outcome, in their order.
  using TriedFailure = std::function<void(std::size_t index, int attempt,
                                          std::chrono::milliseconds next, const Error& error)>;
  template <typename T>
  struct Tried {
    std::vector<PrefectClient::Read<T>> reads;
    Tries tries;
    TriedFailure failed;
    std::function<void(std::vector<Outcome<T>>)> done;
    std::vector<Outcome<T>> outcomes;
    int attempt = 0;  // of the round in flight
  };
  template <typename T>
  void start_tried(std::vector<PrefectClient::Read<T>> reads, Tries tries, TriedFailure failed,
                   std::function<void(std::vector<Outcome<T>>)> done);
  template <typename T>
  void tried_round(const std::shared_ptr<Tried<T>>& tried, const std::vector<std::size_t>& which);

  // --- claiming (claim.cpp) ---
  void fill_slots();
  void claim_and_launch(std::vector<FlowRun> polled);
  void send_claims();
  StateProposal claim_of(const Candidate& c) const;
  void claim_answered(Candidate c, const Outcome<SetStateResult>& outcome);
  void launch_claimed(const Candidate& c);
  void check_lost_claim(Candidate c, const std::string& error);
  std::vector<Candidate> still_scheduled(const std::vector<FlowRun>& polled,
                                         const Outcome<std::map<std::string, FlowRun>>& reread);
  void look_up(const std::vector<FlowRun>& runs,
               std::function<void(Outcome<std::map<std::string, FlowRun>>)> done);
  Logger run_log(const FlowRun& run) const;
  bool wait_as_asked(Candidate c, const SetStateResult& result);
  bool accepted(const SetStateResult& result, const Logger& rlog) const;
  void label(const FlowRun& run, const Logger& rlog);
  void learn_features(const std::string& version);

  // --- launching (launch.cpp) ---
  std::string flow_name(const std::string& flow_id) const;
  void launch(FlowRun run, const Deployment& deployment, const Logger& rlog);

  // The processes that ended in one supervision round, reported together:
  // taken out of running_ (map nodes: callbacks may still point to them).
  struct Report {
    Running& r;
    ProcessEnd end;
    FinalDecision decision;
    const FlowRun& run;  // as read after the exit, else as polled
  };
  struct Ended {
    std::map<std::string, Running>::node_type node;
    ExitStatus status;
  };
  struct ReportBatch {
    std::vector<Ended> runs;
    std::map<std::string, FlowRun> current;  // their states, read after the exits
    std::vector<Report> reports;             // decided once their states are read
    bool concluded = false;                  // no longer counted in reporting_
  };

  // --- reporting (report.cpp) ---
  void send_reports();
  void finish(const std::shared_ptr<ReportBatch>& batch);
  void decide(const std::shared_ptr<ReportBatch>& batch, const Outcome<std::vector<FlowRun>>& read);
  void conclude(ReportBatch& batch, const std::vector<SetStateResult>& results);
  void reported(ReportBatch& batch);
  void log_report(const Running& r, const ProcessEnd& end, const FinalDecision& decision,
                  const SetStateResult& result) const;
  void propose(const std::vector<StateProposal>& proposals,
               std::function<void(std::vector<SetStateResult>)> done);

  const Config& config_;
  PrefectClient& client_;
  Sleeper& sleeper_;
  WorkPool pool_;
  NativeWorkerOptions options_;
  SteadyClock steady_clock_;
  const Clock& clock_;  // options_.clock or steady_clock_
  Logger log_;

  std::chrono::system_clock::time_point horizon_;
  std::deque<FlowRun> queue_;
  std::set<std::string> seen_;
  std::map<std::string, Running> running_;
  // Declared after running_: destroyed (children killed) before the entries
  // their callbacks point to.
  std::shared_ptr<ProcessLauncher> processes_;  // options_.launcher or real processes
  std::vector<std::pair<std::string, ExitStatus>> exited_;
  std::map<std::string, std::optional<Deployment>> deployments_;  // none: deleted
  std::map<std::string, std::string> flow_names_;
  std::vector<RunRecord> records_;
  RunUpdates updates_;  // labels and infrastructure_pids (run_updates.hpp)
  RunJournal journal_;  // lines and events for Prefect's UI (run_journal.hpp)
  TimePoint next_heartbeat_{};
  std::optional<ApiClient::CallId> heartbeat_call_;  // a heartbeat in flight
  // Our worker row exists before any run says we claimed it, so that a
  // cycle that finds the run orphaned can judge it (recover.hpp): no claim
  // goes out before the first heartbeat has ended.
  bool first_heartbeat_ended_ = false;
  // Re-read, waiting for that heartbeat, or for the delay of a WAIT answer.
  std::vector<Candidate> unsent_claims_;
  std::size_t claiming_ = 0;   // runs taken from the queue, not yet launched or skipped
  std::size_t reporting_ = 0;  // runs whose process ended, not yet recorded
  // Ended runs waiting for the report read in flight (report.cpp).
  std::deque<std::shared_ptr<ReportBatch>> unsent_reports_;
  bool report_read_in_flight_ = false;
  bool lookups_in_flight_ = false;  // a batch's re-read (claim.cpp)
  bool cancel_check_in_flight_ = false;
  bool poll_in_flight_ = false;
  TimePoint next_poll_{};
  TimePoint next_cancel_check_{};
  TimePoint next_progress_{};
  std::multimap<TimePoint, std::function<void()>> timers_;  // after()
  // The server has flow-run labels; unknown until the first batch's lookups.
  std::optional<bool> labels_;
  bool exhausted_ = false;
  int empty_polls_ = 0;      // before the first launch
  std::string stop_reason_;  // why the worker is stopping; empty: it is not
  int launched_ = 0;
  int skipped_ = 0;
  // A failed poll (run forever) is tried again 1 s, 2 s, 4 s … later, up to
  // a minute; PREFECT_WORKER_MAX_CONSECUTIVE_FAILURES in a row end the worker.
  FailureStreak poll_failures_{std::chrono::seconds(1), std::chrono::seconds(60)};
  // A failed heartbeat: again 1 s, 2 s, 4 s … later, up to 32 s or the interval.
  FailureStreak heartbeat_failures_;  // set up by the constructor
};

template <typename T>
void NativeWorker::Impl::start_tried(std::vector<PrefectClient::Read<T>> reads, Tries tries,
                                     TriedFailure failed,
                                     std::function<void(std::vector<Outcome<T>>)> done) {
  std::vector<std::size_t> all(reads.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  auto tried = std::make_shared<Tried<T>>(
      Tried<T>{std::move(reads), tries, std::move(failed), std::move(done), {}, 0});
  tried->outcomes.resize(all.size());
  tried_round(tried, all);
}

template <typename T>
void NativeWorker::Impl::tried_round(const std::shared_ptr<Tried<T>>& tried,
                                     const std::vector<std::size_t>& which) {
  ++tried->attempt;
  std::vector<PrefectClient::Read<T>> reads;
  reads.reserve(which.size());
  for (const std::size_t i : which) {
    reads.push_back(tried->reads[i]);
  }
  client_.start_all(reads, [this, tried, which](std::vector<Outcome<T>> outcomes) {
    const auto next = tried->tries.delay_after(tried->attempt);
    std::vector<std::size_t> again;
    for (std::size_t k = 0; k < which.size(); ++k) {
      const auto e = error_of(outcomes[k].error);
      if (e && !tried->tries.last(tried->attempt)) {
        tried->failed(which[k], tried->attempt, next, *e);
        again.push_back(which[k]);
      }
      tried->outcomes[which[k]] = std::move(outcomes[k]);
    }
    if (again.empty()) {
      tried->done(std::move(tried->outcomes));
      return;
    }
    after(next, [this, tried, again] { tried_round(tried, again); });
  });
}

}  // namespace pc
