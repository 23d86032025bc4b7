#include "common/exit_code.hpp"

#include <signal.h>

namespace pc {

std::string_view exit_code_name(ExitCode code) {
  switch (code) {
    case ExitCode::kOk:
      return "ok";
    case ExitCode::kRunsFailed:
      return "runs_failed";
    case ExitCode::kUsage:
      return "usage";
    case ExitCode::kApi:
      return "api";
    case ExitCode::kPreflight:
      return "preflight";
    case ExitCode::kWaitTimeout:
      return "wait_timeout";
    case ExitCode::kInterrupted:
      return "interrupted";
    case ExitCode::kTerminated:
      return "terminated";
  }
  return "unknown";
}

ExitCode exit_code_for_signal(int sig) {
  return sig == SIGINT ? ExitCode::kInterrupted : ExitCode::kTerminated;
}

std::string_view stop_signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace pc
