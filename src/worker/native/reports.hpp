#pragma once
// The native worker's reports: from ended processes to final states and the
// RunRecords of the summary. The processes that ended in one supervision
// round are reported together: one read of their states, their proposals
// sent at once (final_state.hpp decides them), no read after a proposal (its
// answer holds the state). Both steps are in flight while the loop goes on.
//
// Final proposals (CRASHED, CANCELLED, SCHEDULED again) must not be lost:
// each is tried three times, 1 s and then 2 s apart (tried_calls.hpp), with
// its transition_id, so one the server applied before its answer was lost is
// not applied twice. One that failed every time is recorded as an ABORT
// holding the last error.
//
// What is in flight is the set of run ids between their process's end (or
// their final proposal) and their record; settled() is that set empty.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "log/logger.hpp"
#include "prefect/client.hpp"
#include "process/process.hpp"
#include "worker/native/final_state.hpp"
#include "worker/native/run_journal.hpp"
#include "worker/native/running.hpp"
#include "worker/native/timers.hpp"
#include "worker/phase.hpp"

namespace pc {

class Reports {
 public:
  // `log` (the worker's) must outlive this, as must `client`, `timers` and
  // `journal` (what Prefect's UI shows of a run: its exit, the states we set).
  Reports(PrefectClient& client, Timers& timers, const Logger& log, RunJournal& journal)
      : client_(client), timers_(timers), log_(log), journal_(journal) {}

  // A run whose process ended, taken out of the running map; reported with
  // the others of its round by the next send().
  void add(RunningMap::node_type node, ExitStatus status);
  // Starts the next batch's report, unless a report read is in flight: the
  // runs that end meanwhile wait for it and go in one read together.
  void send();
  // A claimed run whose process could not be started: CRASHED, recorded.
  void crash_unstarted(const FlowRun& run, const std::string& why);
  // Proposals of runs the worker does not start (CANCELLED of a deployment
  // that is gone), tried like the reports' own; no record.
  void propose_final(const std::vector<StateProposal>& proposals);

  bool settled() const { return in_flight_.empty(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  // Ended runs whose report waits for the read in flight.
  bool waiting() const { return !unsent_.empty(); }
  std::size_t recorded() const { return records_.size(); }
  std::vector<RunRecord> take_records() { return std::move(records_); }

 private:
  // The processes that ended in one supervision round.
  struct Report {
    Running& r;
    ProcessEnd end;
    FinalDecision decision;
    const FlowRun& run;  // as read after the exit, else as polled
  };
  struct Ended {
    RunningMap::node_type node;
    ExitStatus status;
  };
  struct Batch {
    std::vector<Ended> runs;
    std::map<std::string, FlowRun> current;  // their states, read after the exits
    std::vector<Report> reports;             // decided once their states are read
  };

  void finish(const std::shared_ptr<Batch>& batch);
  void decide(const std::shared_ptr<Batch>& batch, const Outcome<std::vector<FlowRun>>& read);
  void conclude(Batch& batch, const std::vector<SetStateResult>& results);
  void reported(const Batch& batch);
  void propose(const std::vector<StateProposal>& proposals,
               std::function<void(std::vector<SetStateResult>)> done);

  PrefectClient& client_;
  Timers& timers_;
  const Logger& log_;
  RunJournal& journal_;
  std::deque<std::shared_ptr<Batch>> unsent_;
  bool read_in_flight_ = false;
  std::set<std::string> in_flight_;  // run ids not yet recorded (or answered)
  std::vector<RunRecord> records_;
};

}  // namespace pc
