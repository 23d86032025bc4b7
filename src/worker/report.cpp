#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/error.hpp"
#include "worker/final_state.hpp"
#include "worker/native_worker.hpp"

// The native worker's reports once processes have ended (native_worker.hpp):
// the final states, decided by decide_final_state, and the RunRecords. The
// processes that ended in one supervision round are reported together: one
// read of their states, their proposals sent at once, no read after an
// accepted proposal (its answer holds the state). An API 100 ms away costs
// two round trips for twenty runs, not forty, and both are in flight while
// the loop goes on: other runs are claimed, launched and supervised.

namespace pc {

// The next batch of ended runs (supervise() asks once per round, after that
// round's answers), unless a report read is in flight: the runs
// that end meanwhile wait for it and go in one read with each other (one
// read per exit and per freed slot made 370 reads for 200 runs instead of
// about 70, and cost 2 s of 13 on loopback).
void NativeWorker::Impl::send_reports() {
  if (report_read_in_flight_ || unsent_reports_.empty()) {
    return;
  }
  auto batch = std::move(unsent_reports_.front());
  unsent_reports_.pop_front();
  finish(batch);
}

void NativeWorker::Impl::finish(const std::shared_ptr<ReportBatch>& batch) {
  FlowRunFilter filter;
  for (auto& node : batch->runs) {
    Running& r = node.mapped();
    r.out.flush();
    r.err.flush();
    if (r.temp_dir) {
      std::error_code ec;
      std::filesystem::remove_all(*r.temp_dir, ec);
    }
    filter.ids.push_back(r.run.id);
  }
  // Their current states, in one read.
  report_read_in_flight_ = true;
  client_.start_read(PrefectClient::flow_runs_read(filter),
                     [this, batch](const Outcome<std::vector<FlowRun>>& read) {
                       report_read_in_flight_ = false;
                       try {
                         decide(batch, read);
                       } catch (...) {
                         reported(*batch);  // a bug of ours or a failed read: no run waits
                         throw;
                       }
                     });
}

// Each run's decision, and the proposals of those that need one, at once.
void NativeWorker::Impl::decide(const std::shared_ptr<ReportBatch>& batch,
                                const Outcome<std::vector<FlowRun>>& read) {
  if (const auto e = error_of(read.error)) {
    // A failed read leaves their states unknown.
    for (auto& node : batch->runs) {
      node.mapped().log.warn(std::string("cannot read the run's state after exit: ") + e->what());
    }
  } else {
    for (const auto& run : *read.value) {
      batch->current.emplace(run.id, run);
    }
  }
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < batch->runs.size(); ++i) {
    Running& r = batch->runs[i].mapped();
    ProcessEnd end{std::nullopt, r.stop_reason, r.cancelling, batch->statuses[i], r.spawn_error};
    const auto seen = batch->current.find(r.run.id);
    if (seen != batch->current.end()) {
      end.state = seen->second.current_type();
    }
    FinalDecision decision = decide_final_state(end, now);
    if (decision.action != FinalAction::kKeep) {
      batch->proposals.push_back({r.run.id, decision.state, decision.force, new_uuid4()});
    }
    batch->reports.push_back({r, std::move(end), std::move(decision),
                              seen != batch->current.end() ? seen->second : r.run});
  }
  std::vector<PrefectClient::Read<SetStateResult>> reads;
  reads.reserve(batch->proposals.size());
  for (const auto& proposal : batch->proposals) {
    reads.push_back(PrefectClient::set_state_read(proposal));
  }
  client_.start_all(reads, [this, batch](const std::vector<Outcome<SetStateResult>>& outcomes) {
    conclude(*batch, outcomes);
  });
}

// The log lines and records, once every proposal has its answer.
void NativeWorker::Impl::conclude(ReportBatch& batch,
                                  const std::vector<Outcome<SetStateResult>>& outcomes) {
  reported(batch);
  auto proposal = batch.proposals.begin();
  auto outcome = outcomes.begin();
  for (const auto& report : batch.reports) {
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

// The batch's runs no longer count as being reported (once).
void NativeWorker::Impl::reported(ReportBatch& batch) {
  if (!std::exchange(batch.concluded, true)) {
    reporting_ -= batch.runs.size();
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
