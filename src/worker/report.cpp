#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "worker/final_state.hpp"
#include "worker/native_worker.hpp"

// The native worker's reports once a process has ended (native_worker.hpp):
// the final state, decided by decide_final_state, and the RunRecords.

namespace pc {

void NativeWorker::Impl::finish(Running& r, const ExitStatus& status) {
  r.out.flush();
  r.err.flush();
  const std::string& id = r.run.id;
  if (r.temp_dir) {
    std::error_code ec;
    std::filesystem::remove_all(*r.temp_dir, ec);
  }
  std::optional<FlowRun> seen;
  ProcessEnd end{std::nullopt, r.stop_reason, r.cancelling, status, r.spawn_error};
  try {
    if ((seen = client_.read_flow_run(id))) {
      end.state = seen->current_type();
    }
  } catch (const Error& e) {
    r.log.warn(std::string("cannot read the run's state after exit: ") + e.what());
  }
  const FinalDecision decision = decide_final_state(end, std::chrono::system_clock::now());
  const std::string described = status.describe();
  switch (decision.action) {
    case FinalAction::kKeep:
      r.log.info("process " + described + "; flow run " + std::string(to_string(*end.state)));
      remember(id, seen);  // final, as just read: no second request
      return;
    case FinalAction::kReschedule:
      set_state(id, decision.state, decision.force);
      r.log.info("handed back: SCHEDULED again (" + r.stop_reason + ")");
      break;
    case FinalAction::kStopped:
      set_state(id, decision.state, decision.force);
      r.log.warn("stopped: CRASHED (" + r.stop_reason + ")");
      break;
    case FinalAction::kCancel:
      set_state(id, decision.state, decision.force);
      r.log.info("cancelled: process stopped (" + described + ")");
      break;
    case FinalAction::kCrash: {
      auto result = set_state(id, decision.state, decision.force);
      r.log.warn("process " + described + " but the run was " +
                 (end.state ? std::string(to_string(*end.state)) : std::string("unknown")) +
                 ": proposed CRASHED (" + std::string(to_string(result.status)) + ")");
      break;
    }
  }
  remember(id);
}

// The run's final state for the summary, read now unless `known` is given.
void NativeWorker::Impl::remember(const std::string& id, const std::optional<FlowRun>& known) {
  RunRecord record{id, "", "UNKNOWN", "", ""};
  try {
    if (auto run = known ? known : client_.read_flow_run(id)) {
      record.name = run->name;
      if (auto t = run->current_type()) {
        record.state_type = std::string(to_string(*t));
      }
      if (run->state) {
        record.state_name = run->state->name;
        record.message = run->state->message;
      }
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
                                             bool force) {
  constexpr Tries kTries{3, std::chrono::seconds(1), false};  // 1 s, then 2 s apart
  const std::string transition_id = new_uuid4();
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
