#include "worker/native/reports.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "worker/native/tried_calls.hpp"

namespace pc {
namespace {

// The log line of a run whose final state was proposed.
void log_report(const Running& r, const ProcessEnd& end, const FinalDecision& decision,
                const SetStateResult& result) {
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

}  // namespace

void Reports::add(RunningMap::node_type node, ExitStatus status) {
  // At most one read's page per batch.
  const std::size_t page = static_cast<std::size_t>(FlowRunFilter{}.limit);
  if (unsent_.empty() || unsent_.back()->runs.size() == page) {
    unsent_.push_back(std::make_shared<Batch>());
  }
  in_flight_.insert(node.key());
  if (node.mapped().spawn_error.empty()) {
    journal_.ended(node.key(), status);  // the exit line needs no state
  }
  unsent_.back()->runs.push_back({std::move(node), status});
}

void Reports::send() {
  if (read_in_flight_ || unsent_.empty()) {
    return;
  }
  auto batch = std::move(unsent_.front());
  unsent_.pop_front();
  finish(batch);
}

void Reports::finish(const std::shared_ptr<Batch>& batch) {
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
  read_in_flight_ = true;
  client_.start_call(PrefectClient::flow_runs_read(filter),
                     [this, batch](const Outcome<std::vector<FlowRun>>& read) {
                       read_in_flight_ = false;
                       try {
                         decide(batch, read);
                       } catch (...) {
                         reported(*batch);  // a bug of ours or a failed read: no run waits
                         throw;
                       }
                     });
}

// Each run's decision, and the proposals of those that need one, at once.
void Reports::decide(const std::shared_ptr<Batch>& batch,
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
    if (decision.action != FinalAction::kKeep) {
      proposals.push_back({.flow_run_id = r.run.id,
                           .state = decision.state,
                           .force = decision.force,
                           .transition_id = new_uuid4()});
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
void Reports::conclude(Batch& batch, const std::vector<SetStateResult>& results) {
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

// The batch's runs are no longer in flight.
void Reports::reported(const Batch& batch) {
  for (const auto& ended : batch.runs) {
    in_flight_.erase(ended.node.key());
  }
}

void Reports::crash_unstarted(const FlowRun& run, const std::string& why) {
  journal_.state_set(run, "CRASHED", "its process could not be started: " + why);
  const StateProposal crashed{
      .flow_run_id = run.id,
      .state = {StateType::kCrashed, "", "Failed to submit flow run to infrastructure: " + why},
      .force = false,
      .transition_id = new_uuid4()};
  in_flight_.insert(run.id);
  propose({crashed}, [this, run](const std::vector<SetStateResult>& results) {
    in_flight_.erase(run.id);
    records_.push_back(run_record(run, results[0].state));
  });
}

void Reports::propose_final(const std::vector<StateProposal>& proposals) {
  if (proposals.empty()) {
    return;
  }
  std::vector<std::string> ids;
  for (const auto& proposal : proposals) {
    ids.push_back(proposal.flow_run_id);
    in_flight_.insert(proposal.flow_run_id);
  }
  propose(proposals, [this, ids](const std::vector<SetStateResult>&) {
    for (const auto& id : ids) {
      in_flight_.erase(id);
    }
  });
}

void Reports::propose(const std::vector<StateProposal>& proposals,
                      std::function<void(std::vector<SetStateResult>)> done) {
  constexpr Tries kTries = kMustNotBeLost;
  auto described = [proposals](std::size_t i) {
    return "flow run " + proposals[i].flow_run_id + " to " +
           std::string(to_string(proposals[i].state.type));
  };
  std::vector<PrefectClient::Call<SetStateResult>> calls;
  calls.reserve(proposals.size());
  for (const auto& proposal : proposals) {
    calls.push_back(PrefectClient::proposal_call(proposal));
  }
  start_tried<SetStateResult>(
      client_, timers_, std::move(calls), kTries,
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
