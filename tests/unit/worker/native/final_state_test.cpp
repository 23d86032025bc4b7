#include "worker/native/final_state.hpp"

#include <catch2/catch.hpp>

using namespace pc;

namespace {

constexpr auto kNone = std::nullopt;
const std::string kSigterm = "SIGTERM received";
const std::string kTimeout = "wait timeout of 60 s reached (PREFECT_WAIT_TIMEOUT_SECONDS)";
const ExitStatus kExit0{0, 0};
const ExitStatus kExit1{1, 0};
const ExitStatus kExit137{137, 0};
const ExitStatus kExit143{143, 0};
const ExitStatus kSigkill{-1, 9};
const ExitStatus kSigtermd{-1, 15};
const ExitStatus kNotFound{127, 0};

struct Row {
  const char* name;
  // what the worker knows
  std::optional<StateType> state;
  std::string stop_reason;
  bool cancelling;
  ExitStatus status;
  std::string spawn_error;
  // what it reports
  FinalAction action;
  StateType type;  // ignored for kKeep
  bool force;
  std::string message;
};

}  // namespace

TEST_CASE("decide_final_state: one row per case", "[worker]") {
  const auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 56);
  const std::string sched = "scheduled again for the next cycle";
  // clang-format off
  const std::vector<Row> rows{
    // the run reached a final state by itself: nothing to report
    {"exit 0, COMPLETED", StateType::kCompleted, "", false, kExit0, "",
     FinalAction::kKeep, StateType::kCompleted, false, ""},
    {"exit 1, FAILED", StateType::kFailed, "", false, kExit1, "",
     FinalAction::kKeep, StateType::kFailed, false, ""},
    {"exit 1, the engine reported CRASHED", StateType::kCrashed, "", false, kExit1, "",
     FinalAction::kKeep, StateType::kCrashed, false, ""},
    {"exit 0, CANCELLED in the UI meanwhile", StateType::kCancelled, "", false, kExit0, "",
     FinalAction::kKeep, StateType::kCancelled, false, ""},

    // the process ended, the run did not: CRASHED proposed, not forced
    {"exit 0 but still RUNNING", StateType::kRunning, "", false, kExit0, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with exit code 0 (success)."},
    {"exit 1, still RUNNING", StateType::kRunning, "", false, kExit1, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with exit code 1 (general error)."},
    {"exit 137 (a shell's SIGKILL), still RUNNING", StateType::kRunning, "", false, kExit137, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with exit code 137 (killed (SIGKILL; often out of memory))."},
    {"SIGKILL (OOM killer), still RUNNING", StateType::kRunning, "", false, kSigkill, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with killed by signal 9 (SIGKILL) (killed (SIGKILL; often out of "
     "memory))."},
    {"exit 1 before the engine started, PENDING", StateType::kPending, "", false, kExit1, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with exit code 1 (general error)."},
    {"exit 1, state unreadable", kNone, "", false, kExit1, "",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Flow run process exited with exit code 1 (general error)."},
    {"command not found", StateType::kPending, "", false, kNotFound, "cannot run \"x\": No such file",
     FinalAction::kCrash, StateType::kCrashed, false,
     "Failed to submit flow run to infrastructure: cannot run \"x\": No such file."},

    // the cycle stopped it (SIGTERM to the cycle, the wait timeout)
    {"SIGTERM to the cycle, flow RUNNING, exit 143", StateType::kRunning, kSigterm, false, kExit143, "",
     FinalAction::kStopped, StateType::kCrashed, true,
     "prefect-cycle stopped this flow run: SIGTERM received; the process exited with exit code 143."},
    {"wait timeout, flow RUNNING, SIGKILL after the grace", StateType::kRunning, kTimeout, false, kSigkill, "",
     FinalAction::kStopped, StateType::kCrashed, true,
     "prefect-cycle stopped this flow run: " + kTimeout +
         "; the process was killed by signal 9 (SIGKILL)."},
    {"SIGTERM to the cycle, the engine reported CRASHED", StateType::kCrashed, kSigterm, false, kSigtermd, "",
     FinalAction::kStopped, StateType::kCrashed, true,
     "prefect-cycle stopped this flow run: SIGTERM received; the process was killed by signal 15 "
     "(SIGTERM)."},
    {"SIGTERM to the cycle, flow PENDING", StateType::kPending, kSigterm, false, kSigtermd, "",
     FinalAction::kReschedule, StateType::kScheduled, true,
     "prefect-cycle stopped before the flow started (SIGTERM received); " + sched},
    {"wait timeout, flow still SCHEDULED", StateType::kScheduled, kTimeout, false, kExit143, "",
     FinalAction::kReschedule, StateType::kScheduled, true,
     "prefect-cycle stopped before the flow started (" + kTimeout + "); " + sched},
    {"SIGTERM to the cycle, state unreadable", kNone, kSigterm, false, kExit143, "",
     FinalAction::kReschedule, StateType::kScheduled, true,
     "prefect-cycle stopped before the flow started (SIGTERM received); " + sched},
    {"SIGTERM to the cycle, the flow COMPLETED first", StateType::kCompleted, kSigterm, false, kExit0, "",
     FinalAction::kKeep, StateType::kCompleted, false, ""},
    {"wait timeout, the flow FAILED first", StateType::kFailed, kTimeout, false, kExit1, "",
     FinalAction::kKeep, StateType::kFailed, false, ""},
    {"SIGTERM to the cycle while cancelling: the stop wins", StateType::kRunning, kSigterm, true, kExit143, "",
     FinalAction::kStopped, StateType::kCrashed, true,
     "prefect-cycle stopped this flow run: SIGTERM received; the process exited with exit code 143."},

    // cancelled in Prefect (the UI), we stopped the process
    {"cancelled, still CANCELLING", StateType::kCancelling, "", true, kSigtermd, "",
     FinalAction::kCancel, StateType::kCancelled, true, "Cancelled: prefect-cycle stopped the process."},
    {"cancelled, still RUNNING", StateType::kRunning, "", true, kSigkill, "",
     FinalAction::kCancel, StateType::kCancelled, true, "Cancelled: prefect-cycle stopped the process."},
    {"cancelled, the engine reported CRASHED", StateType::kCrashed, "", true, kExit143, "",
     FinalAction::kCancel, StateType::kCancelled, true, "Cancelled: prefect-cycle stopped the process."},
    {"cancelled, state unreadable", kNone, "", true, kExit143, "",
     FinalAction::kCancel, StateType::kCancelled, true, "Cancelled: prefect-cycle stopped the process."},
    {"cancelled, already CANCELLED", StateType::kCancelled, "", true, kExit143, "",
     FinalAction::kKeep, StateType::kCancelled, false, ""},
    {"cancelled, but it COMPLETED first", StateType::kCompleted, "", true, kExit0, "",
     FinalAction::kKeep, StateType::kCompleted, false, ""},
  };
  // clang-format on
  for (const Row& row : rows) {
    SECTION(row.name) {
      const FinalDecision d = decide_final_state(
          ProcessEnd{row.state, row.stop_reason, row.cancelling, row.status, row.spawn_error}, now);
      CHECK(d.action == row.action);
      CHECK(d.force == row.force);
      if (row.action != FinalAction::kKeep) {
        CHECK(d.state.type == row.type);
        CHECK(d.state.message == row.message);
        CHECK(d.state.name.empty());
      }
      if (row.action == FinalAction::kReschedule) {
        CHECK(d.state.state_details.value("scheduled_time", "") == format_iso8601(now));
      } else {
        CHECK(d.state.state_details.empty());
      }
    }
  }
}
