#pragma once
// The native worker's claims: from polled runs to runs that are ours, a
// batch at a time, each step in flight while the loop goes on.
//
//   claim()   takes a batch of polled runs: one re-read of them together with
//             what their starts need (deployments, flow names, the server's
//             version, whose flow-run labels it learns once); only those
//             still SCHEDULED go on. A run whose deployment is gone is
//             CANCELLED (Reports::propose_final), one whose deployment
//             cannot be read stays SCHEDULED.
//   send()    their PENDING proposals (fresh transition_id, force=false),
//             once a heartbeat has made our worker row (allow()): ACCEPT into
//             PENDING -> labelled, handed to `start`; WAIT -> proposed again
//             after its delay (a due time, never a sleep), at most 20 times;
//             ABORT/REJECT -> skipped.
//   lost      a proposal whose answer failed may have been applied: the run
//             is read (tried three times, 1 s and 2 s apart) and is ours if
//             its state carries our transition_id (lost_answer()).
//
// What is in flight is the set of run ids taken from the queue and neither
// handed to `start` nor skipped; settled() is that set empty.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "config/config.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"
#include "worker/native/reports.hpp"
#include "worker/native/run_journal.hpp"
#include "worker/native/run_updates.hpp"
#include "worker/native/timers.hpp"

namespace pc {

// A run on its way from the poll to its process.
struct Candidate {
  FlowRun run;
  Deployment deployment;
  Logger log;
  std::string transition_id;
  int waits = 0;                                // WAIT answers so far
  std::chrono::steady_clock::time_point due{};  // when its proposal may go
};

class Claims {
 public:
  // Starts a claimed run's process (the loop's step).
  using Start = std::function<void(const Candidate&)>;
  // Every reference must outlive this; `log` is the worker's.
  Claims(const Config& config, const WorkPool& pool, PrefectClient& client, Timers& timers,
         const Logger& log, RunUpdates& updates, RunJournal& journal, Reports& reports,
         Start start);

  // Takes `polled` (one re-read's page at most) in flight. Not while
  // reading(): the slots that free meanwhile wait and go in one read.
  void claim(std::vector<FlowRun> polled);
  bool reading() const { return lookups_in_flight_; }
  // The proposals that are due; once per loop round, after its answers.
  void send();
  // The first heartbeat has ended: our worker row exists, so that a cycle
  // that finds a run of ours orphaned can judge it (recover.hpp).
  void allow() { allowed_ = true; }
  bool allowed() const { return allowed_; }
  // The cycle stops: what was not proposed stays SCHEDULED, nobody's, and a
  // WAIT answer is not waited for.
  void stop();

  std::size_t in_flight() const { return claiming_.size(); }
  bool settled() const { return claiming_.empty(); }
  int skipped() const { return skipped_; }
  // The flow's name, as looked up with the run's batch ("" when that failed).
  std::string flow_name(const std::string& flow_id) const;
  // The server's release, as read with the first batch's lookups (none
  // before, or when that read failed).
  const std::optional<std::string>& server_version() const { return server_version_; }

 private:
  StateProposal claim_of(const Candidate& c) const;
  void answered(Candidate c, const Outcome<SetStateResult>& outcome);
  // An accepted claim: the run's process started, or the run given back
  // when the PENDING did not replace SCHEDULED.
  void claimed(const Candidate& c, const State& pending);
  void give_back(const Candidate& c);
  void lost_answer(Candidate c, const std::string& error);
  std::vector<Candidate> still_scheduled(const std::vector<FlowRun>& polled,
                                         const Outcome<std::map<std::string, FlowRun>>& reread);
  void look_up(const std::vector<FlowRun>& runs,
               std::function<void(Outcome<std::map<std::string, FlowRun>>)> done);
  Logger run_log(const FlowRun& run) const;
  bool wait_as_asked(Candidate c, const SetStateResult& result);
  bool accepted(const SetStateResult& result, const Logger& rlog) const;
  void label(const FlowRun& run, const Logger& rlog);
  void learn_features(const std::string& version);
  void skip(const std::string& id);

  const Config& config_;
  const WorkPool& pool_;
  PrefectClient& client_;
  Timers& timers_;
  const Logger& log_;
  RunUpdates& updates_;
  RunJournal& journal_;  // what Prefect's UI shows of a run (run_journal.hpp)
  Reports& reports_;
  Start start_;

  std::set<std::string> claiming_;  // run ids taken from the queue, not yet started or skipped
  std::vector<Candidate> unsent_;   // re-read, waiting for allow() or a WAIT's delay
  bool lookups_in_flight_ = false;
  bool allowed_ = false;
  bool stopping_ = false;
  int skipped_ = 0;
  std::map<std::string, std::optional<Deployment>> deployments_;  // none: deleted
  std::map<std::string, std::string> flow_names_;
  // The server has flow-run labels; unknown until the first batch's lookups.
  std::optional<bool> labels_;
  std::optional<std::string> server_version_;
};

}  // namespace pc
