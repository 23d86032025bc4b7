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
namespace {

// The summary's line of a run: the state read, or the one the server accepted.
RunRecord record_of(const FlowRun& run, const std::optional<State>& state) {
  RunRecord record{run.id, run.name, "UNKNOWN", "", ""};
  if (state) {
    record.state_type = std::string(to_string(state->type));
    record.state_name = state->name;
    record.message = state->message;
  }
  return record;
}

}  // namespace

// The current state of each ended run, read together (at most a page of the
// filter per read); a failed read leaves its runs unknown.
std::map<std::string, FlowRun> NativeWorker::Impl::read_ended(const std::vector<Ended>& ended) {
  std::map<std::string, FlowRun> current;
  const auto page = static_cast<std::size_t>(FlowRunFilter{}.limit);
  for (std::size_t first = 0; first < ended.size(); first += page) {
    FlowRunFilter filter;
    for (std::size_t i = first; i < std::min(ended.size(), first + page); ++i) {
      filter.ids.push_back(ended[i].running->run.id);
    }
    try {
      for (auto& run : client_.read_flow_runs(filter)) {
        current.emplace(run.id, std::move(run));
      }
    } catch (const Error& e) {
      for (std::size_t i = first; i < std::min(ended.size(), first + page); ++i) {
        ended[i].running->log.warn(std::string("cannot read the run's state after exit: ") +
                                   e.what());
      }
    }
  }
  return current;
}

void NativeWorker::Impl::finish(const std::vector<Ended>& ended) {
  for (const auto& e : ended) {
    e.running->out.flush();
    e.running->err.flush();
    if (e.running->temp_dir) {
      std::error_code ec;
      std::filesystem::remove_all(*e.running->temp_dir, ec);
    }
  }
  const std::map<std::string, FlowRun> current = read_ended(ended);

  // What each run needs, and the proposals of those that need one, together.
  std::vector<ProcessEnd> ends;
  std::vector<FinalDecision> decisions;
  std::vector<StateProposal> proposals;
  const auto now = std::chrono::system_clock::now();
  for (const auto& e : ended) {
    const Running& r = *e.running;
    ProcessEnd end{std::nullopt, r.stop_reason, r.cancelling, e.status, r.spawn_error};
    if (auto it = current.find(r.run.id); it != current.end()) {
      end.state = it->second.current_type();
    }
    decisions.push_back(decide_final_state(end, now));
    ends.push_back(std::move(end));
    if (decisions.back().action != FinalAction::kKeep) {
      proposals.push_back({r.run.id, decisions.back().state, decisions.back().force, new_uuid4()});
    }
  }
  auto outcomes = proposals.empty() ? std::vector<Outcome<SetStateResult>>{}
                                    : client_.set_flow_run_states(proposals);

  std::size_t next_proposal = 0;
  for (std::size_t i = 0; i < ended.size(); ++i) {
    Running& r = *ended[i].running;
    const auto seen = current.find(r.run.id);
    if (decisions[i].action == FinalAction::kKeep) {
      r.log.info("process " + ended[i].status.describe() + "; flow run " +
                 std::string(to_string(*ends[i].state)));
      if (seen != current.end()) {
        records_.push_back(record_of(seen->second, seen->second.state));  // final, as just read
      } else {
        remember(r.run.id);
      }
      continue;
    }
    const std::size_t p = next_proposal++;
    SetStateResult result;
    if (outcomes[p].value) {
      result = *outcomes[p].value;
    } else {
      // Tried alone again, with the same transition_id: a proposal the
      // server applied before its answer was lost is not applied twice.
      result =
          set_state(r.run.id, proposals[p].state, proposals[p].force, proposals[p].transition_id);
    }
    report(r, ends[i], decisions[i], ended[i].status, result);
    if (result.status == SetStateStatus::kAccept && result.state) {
      records_.push_back(record_of(seen != current.end() ? seen->second : r.run, result.state));
    } else {
      remember(r.run.id);
    }
  }
}

// The log line of a run whose final state was proposed.
void NativeWorker::Impl::report(const Running& r, const ProcessEnd& end,
                                const FinalDecision& decision, const ExitStatus& status,
                                const SetStateResult& result) const {
  const std::string described = status.describe();
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

// The run's final state for the summary, read now.
void NativeWorker::Impl::remember(const std::string& id) {
  RunRecord record{id, "", "UNKNOWN", "", ""};
  try {
    if (auto run = client_.read_flow_run(id)) {
      record = record_of(*run, run->state);
    }
  } catch (const Error& e) {
    log_.warn(std::string("cannot read flow run ") + id + ": " + e.what());
  }
  records_.push_back(std::move(record));
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
