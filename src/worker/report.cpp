#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "worker/final_state.hpp"
#include "worker/native_worker.hpp"

// The native worker's reports once processes have ended (native_worker.hpp):
// the final states, decided by decide_final_state, and the RunRecords. The
// processes that ended in one supervision round are reported together: one
// read of their states, their proposals sent at once, no read after an
// accepted proposal (its answer holds the state). An API 100 ms away costs
// two round trips for twenty runs, not forty.

namespace pc {

void NativeWorker::Impl::finish(const std::vector<Ended>& ended) {
  std::vector<std::string> ids;
  for (const auto& e : ended) {
    e.running->out.flush();
    e.running->err.flush();
    if (e.running->temp_dir) {
      std::error_code ec;
      std::filesystem::remove_all(*e.running->temp_dir, ec);
    }
    ids.push_back(e.running->run.id);
  }
  // Their current states, in one read; a failed read leaves them unknown.
  std::map<std::string, FlowRun> current;
  try {
    current = client_.read_flow_runs_by_id(ids);
  } catch (const Error& e) {
    for (const auto& ended_run : ended) {
      ended_run.running->log.warn(std::string("cannot read the run's state after exit: ") +
                                  e.what());
    }
  }

  // Each run's decision; the proposals of those that need one, at once.
  struct Report {
    Running& r;
    ProcessEnd end;
    FinalDecision decision;
    const FlowRun& run;  // as just read, else as polled
  };
  std::vector<Report> reports;
  std::vector<StateProposal> proposals;
  const auto now = std::chrono::system_clock::now();
  for (const auto& e : ended) {
    Running& r = *e.running;
    ProcessEnd end{std::nullopt, r.stop_reason, r.cancelling, e.status, r.spawn_error};
    const auto seen = current.find(r.run.id);
    if (seen != current.end()) {
      end.state = seen->second.current_type();
    }
    FinalDecision decision = decide_final_state(end, now);
    if (decision.action != FinalAction::kKeep) {
      proposals.push_back({r.run.id, decision.state, decision.force, new_uuid4()});
    }
    reports.push_back(
        {r, std::move(end), std::move(decision), seen != current.end() ? seen->second : r.run});
  }
  auto outcomes = proposals.empty() ? std::vector<Outcome<SetStateResult>>{}
                                    : client_.set_flow_run_states(proposals);

  auto proposal = proposals.begin();
  auto outcome = outcomes.begin();
  for (const auto& report : reports) {
    if (report.decision.action == FinalAction::kKeep) {
      // Terminal, as just read: final.
      report.r.log.info("process " + report.end.status.describe() + "; flow run " +
                        std::string(to_string(*report.end.state)));
      records_.push_back(run_record(report.run, report.run.state));
      continue;
    }
    // A proposal that failed is tried alone again, with the same
    // transition_id: one the server applied before its answer was lost is
    // not applied twice.
    const SetStateResult result = outcome->value
                                      ? *outcome->value
                                      : set_state(proposal->flow_run_id, proposal->state,
                                                  proposal->force, proposal->transition_id);
    ++proposal;
    ++outcome;
    log_report(report.r, report.end, report.decision, result);
    record(report.run, result);
  }
}

// The log line of a run whose final state was proposed.
void NativeWorker::Impl::log_report(const Running& r, const ProcessEnd& end,
                                    const FinalDecision& decision,
                                    const SetStateResult& result) const {
  const std::string described = end.status.describe();
  switch (decision.action) {
    case FinalAction::kKeep:
      break;
    case FinalAction::kReschedule:
      r.log.info("handed back: SCHEDULED again (" + r.stop_reason + ")");
      break;
    case FinalAction::kStopped:
      r.log.warn("stopped: CRASHED (" + r.stop_reason + ")");
      break;
    case FinalAction::kCancel:
      r.log.info("cancelled: process stopped (" + described + ")");
      break;
    case FinalAction::kCrash:
      r.log.warn("process " + described + " but the run was " +
                 (end.state ? std::string(to_string(*end.state)) : std::string("unknown")) +
                 ": proposed CRASHED (" + std::string(to_string(result.status)) + ")");
      break;
  }
}

// The summary's record of `run` after a final proposal: the state the
// server accepted (its answer holds it), else the state read now.
void NativeWorker::Impl::record(const FlowRun& run, const SetStateResult& result) {
  if (result.status == SetStateStatus::kAccept && result.state) {
    records_.push_back(run_record(run, result.state));
    return;
  }
  RunRecord read{run.id, "", "UNKNOWN", "", ""};
  try {
    if (auto now = client_.read_flow_run(run.id)) {
      read = run_record(*now, now->state);
    }
  } catch (const Error& e) {
    log_.warn(std::string("cannot read flow run ") + run.id + ": " + e.what());
  }
  records_.push_back(std::move(read));
}

// A final report (CRASHED, CANCELLED, SCHEDULED again): a run must not stay
// PENDING/RUNNING because one answer was a 500 or unreadable, so it is
// tried three times, with one transition_id so that a proposal the server
// already applied is not applied twice.
SetStateResult NativeWorker::Impl::set_state(const std::string& id, const StateCreate& state,
                                             bool force, const std::string& transition_id) {
  constexpr Tries kTries{3, std::chrono::seconds(1), false};  // 1 s, then 2 s apart
  std::string error;
  for (int attempt = 1; attempt <= kTries.attempts; ++attempt) {
    try {
      return client_.set_flow_run_state(id, state, force, transition_id);
    } catch (const Error& e) {
      if (state.type == StateType::kPending) {
        throw;
      }
      error = e.what();
    }
    if (!kTries.last(attempt)) {
      const auto delay = kTries.delay_after(attempt);
      log_.warn("could not set flow run " + id + " to " + std::string(to_string(state.type)) +
                " (attempt " + std::to_string(attempt) + " of " + std::to_string(kTries.attempts) +
                ", next in " + std::to_string(delay.count() / 1000) + " s): " + error);
      sleeper_.sleep_for(delay);  // even when stopping
    }
  }
  log_.error("could not set flow run " + id + " to " + std::string(to_string(state.type)) + ": " +
             error);
  SetStateResult failed;
  failed.status = SetStateStatus::kAbort;
  failed.reason = error;
  return failed;
}

}  // namespace pc
