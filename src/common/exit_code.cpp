#include "common/exit_code.hpp"

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

}  // namespace pc
