#include "worker/native/final_state.hpp"

namespace pc {

std::string crashed_message(const std::string& exit_description, const std::string& meaning) {
  return "Flow run process exited with " + exit_description + " (" + meaning + ").";
}

FinalDecision decide_final_state(const ProcessEnd& end, std::chrono::system_clock::time_point now) {
  const std::optional<StateType>& type = end.state;
  const bool terminal = type && is_terminal(*type);
  // The engine reports CRASHED by itself when it gets our SIGTERM; when we
  // stopped the process, our reason replaces its generic message.
  const bool crashed_by_us =
      type == StateType::kCrashed && (!end.stop_reason.empty() || end.cancelling);
  const std::string described = end.status.describe();
  FinalDecision decision;
  if (!end.stop_reason.empty() && (!terminal || crashed_by_us)) {
    decision.force = true;
    if (!type || *type == StateType::kPending || *type == StateType::kScheduled) {
      decision.action = FinalAction::kReschedule;
      decision.state = {StateType::kScheduled, "",
                        "prefect-cycle stopped before the flow started (" + end.stop_reason +
                            "); scheduled again for the next cycle"};
      decision.state.state_details["scheduled_time"] = format_iso8601(now);
    } else {
      decision.action = FinalAction::kStopped;
      decision.state = {
          StateType::kCrashed, "",
          "prefect-cycle stopped this flow run: " + end.stop_reason + "; the process " +
              (end.status.signal ? "was " + described : "exited with " + described) + "."};
    }
  } else if (end.cancelling && type != StateType::kCancelled && (!terminal || crashed_by_us)) {
    // As Prefect's runner does after killing a cancelled run.
    decision.action = FinalAction::kCancel;
    decision.state = {StateType::kCancelled, "", "Cancelled: prefect-cycle stopped the process."};
    decision.force = true;
  } else if (!terminal) {
    decision.action = FinalAction::kCrash;
    decision.state = {
        StateType::kCrashed, "",
        end.spawn_error.empty()
            ? crashed_message(described, explain_exit(end.status))
            : "Failed to submit flow run to infrastructure: " + end.spawn_error + "."};
  }
  return decision;
}

}  // namespace pc
