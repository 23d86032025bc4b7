#pragma once
// What the worker reports for a flow run once its process has ended: a pure
// decision from what it knows at that moment, tested row by row
// (tests/unit/worker/final_state_test.cpp).
//
//   the cycle stopped it (signal,  run not yet final, or CRASHED by the engine
//   wait timeout, worker failure)  on our SIGTERM: SCHEDULED again (forced)
//                                  if the flow never started (PENDING,
//                                  SCHEDULED, unreadable), else CRASHED
//                                  (forced) with the reason
//   cancelled in Prefect           run not yet final, or CRASHED by the engine:
//                                  CANCELLED (forced)
//   neither, run not final         CRASHED proposed (not forced) with the exit
//                                  status and its meaning, or the spawn error
//   neither, run final             nothing to report

#include <chrono>
#include <optional>
#include <string>

#include "prefect/client.hpp"
#include "process/process.hpp"

namespace pc {

// What the worker knows when a flow run's process has ended.
struct ProcessEnd {
  std::optional<StateType> state;  // the run's state read after the exit; nullopt = unknown
  std::string stop_reason;         // why the cycle stopped the process; "" = it did not
  bool cancelling = false;         // the run was cancelled in Prefect and we stopped it
  ExitStatus status;
  std::string spawn_error;  // the command could not be started; "" = it was
};

enum class FinalAction {
  kKeep,        // the run's state is final: report nothing
  kReschedule,  // SCHEDULED again: the cycle stopped it before the flow started
  kStopped,     // CRASHED: the cycle stopped the flow
  kCancel,      // CANCELLED: the run was cancelled in Prefect
  kCrash,       // CRASHED: the process ended but the run did not
};

struct FinalDecision {
  FinalAction action = FinalAction::kKeep;
  // The state to set (unless kKeep). A SCHEDULED state gets its
  // scheduled_time from `now`.
  StateCreate state;
  bool force = false;  // over the server's orchestration rules
};

FinalDecision decide_final_state(const ProcessEnd& end, std::chrono::system_clock::time_point now);

// The message of the CRASHED state for a process that ended with `status`.
std::string crashed_message(const std::string& exit_description, const std::string& meaning);

}  // namespace pc
