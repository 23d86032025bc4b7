#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "worker/final_state.hpp"
#include "worker/native_worker.hpp"

// The native worker's reports once processes have ended (native_worker.hpp):
// the final states, decided by decide_final_state, and the RunRecords. The
// processes that ended in one supervision round are reported together: one
// read of their states, their proposals sent at once, no read after a
// proposal (its answer holds the state). An API 100 ms away costs
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
  for (auto& ended : batch->runs) {
    Running& r = ended.node.mapped();
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
    for (auto& ended : batch->runs) {
      ended.node.mapped().log.warn(std::string("cannot read the run's state after exit: ") +
                                   e->what());
    }
  } else {
    for (const auto& run : *read.value) {
      batch->current.emplace(run.id, run);
    }
  }
  const auto now = std::chrono::system_clock::now();
  std::vector<StateProposal> proposals;
  for (auto& ended : batch->runs) {
    Running& r = ended.node.mapped();
    ProcessEnd end{std::nullopt, r.stop_reason, r.cancelling, ended.status, r.spawn_error};
    const auto seen = batch->current.find(r.run.id);
    if (seen != batch->current.end()) {
      end.state = seen->second.current_type();
    }
    FinalDecision decision = decide_final_state(end, now);
    if (r.spawn_error.empty()) {
      journal_.ended(r.run.id, ended.status);
    }
    if (decision.action != FinalAction::kKeep) {
      proposals.push_back({r.run.id, decision.state, decision.force, new_uuid4()});
    }
    batch->reports.push_back({r, std::move(end), std::move(decision),
                              seen != batch->current.end() ? seen->second : r.run});
  }
  propose(proposals,
          [this, batch](const std::vector<SetStateResult>& results) { conclude(*batch, results); });
}

// The log lines and records, once every proposal has its answer. A run's
// record after its proposal is the state the server's answer holds (the
// one it accepted, or the current one of a REJECT), else UNKNOWN: no read
// here, as the cycle reads again every run whose record is not final
// (collect_runs), once, at its end.
void NativeWorker::Impl::conclude(ReportBatch& batch, const std::vector<SetStateResult>& results) {
  reported(batch);  // first: whatever follows may throw
  auto result = results.begin();
  for (const auto& report : batch.reports) {
    if (report.decision.action == FinalAction::kKeep) {
      // Terminal, as just read: final.
      report.r.log.info("process " + report.end.status.describe() + "; flow run " +
                        std::string(to_string(*report.end.state)));
      records_.push_back(run_record(report.run, report.run.state));
      continue;
    }
    log_report(report.r, report.end, report.decision, *result);
    if (result->status == SetStateStatus::kAccept) {
      journal_.state_set(report.r.run, std::string(to_string(report.decision.state.type)),
                         report.decision.state.message);
    }
    records_.push_back(run_record(report.run, result->state));
    ++result;
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

// Final proposals (CRASHED, CANCELLED, SCHEDULED again): a run must not
// stay PENDING/RUNNING because one answer was a 500 or unreadable, so each
// is tried three times, 1 s and then 2 s apart (timers of the loop), with
// its transition_id: one the server applied before its answer was lost is
// not applied twice. One that failed every time comes back as an ABORT
// holding the last error.
void NativeWorker::Impl::propose(const std::vector<StateProposal>& proposals,
                                 std::function<void(std::vector<SetStateResult>)> done) {
  constexpr Tries kTries{3, std::chrono::seconds(1), false};
  auto described = [proposals](std::size_t i) {
    return "flow run " + proposals[i].flow_run_id + " to " +
           std::string(to_string(proposals[i].state.type));
  };
  std::vector<PrefectClient::Read<SetStateResult>> reads;
  reads.reserve(proposals.size());
  for (const auto& proposal : proposals) {
    reads.push_back(PrefectClient::set_state_read(proposal));
  }
  start_tried<SetStateResult>(
      std::move(reads), kTries,
      [this, described](std::size_t i, int attempt, std::chrono::milliseconds next,
                        const Error& e) {
        log_.warn("could not set " + described(i) + " (attempt " + std::to_string(attempt) +
                  " of " + std::to_string(kTries.attempts) + ", next in " +
                  std::to_string(next.count() / 1000) + " s): " + e.what());
      },
      [this, described, done = std::move(done)](std::vector<Outcome<SetStateResult>> outcomes) {
        std::vector<SetStateResult> results;
        results.reserve(outcomes.size());
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
          if (const auto e = error_of(outcomes[i].error)) {
            log_.error("could not set " + described(i) + ": " + e->message());
            SetStateResult failed;
            failed.status = SetStateStatus::kAbort;
            failed.reason = e->message();
            results.push_back(std::move(failed));
          } else {
            results.push_back(std::move(*outcomes[i].value));
          }
        }
        done(std::move(results));
      });
}

}  // namespace pc
