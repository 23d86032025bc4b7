#include "prefect/exit_info.hpp"

namespace pc {
namespace {

ExitInfo info(int code, std::string explanation, std::string resolution,
              RunLogLevel level = RunLogLevel::kError) {
  return {code, std::move(explanation), std::move(resolution), level};
}

}  // namespace

// The table of Prefect 3.8's INFRASTRUCTURE_EXIT_HINTS, in our words where
// they differ only in style; unknown codes get its generic entry.
ExitInfo exit_info(const ExitStatus& status) {
  const int code = status.signal != 0 ? -status.signal : status.code;
  switch (code) {
    case 0:
      return info(0, "Process exited cleanly.", "No action needed.", RunLogLevel::kInfo);
    case -9:
      return info(code,
                  "Process exited due to a SIGKILL signal. Typically caused by the operating "
                  "system terminating the process for exceeding memory limits, or by manual "
                  "cancellation.",
                  "Check whether the flow run exceeded its memory allocation. If running in a "
                  "container, increase the memory limit. If this was intentional cancellation, "
                  "no action is needed.");
    case -15:
      return info(code,
                  "Process exited due to a SIGTERM signal. Typically caused by graceful shutdown "
                  "or manual cancellation.",
                  "If this was caused by cancellation, no action is needed. Otherwise, check "
                  "for infrastructure scaling events or deployment rollovers.",
                  RunLogLevel::kInfo);
    case 1:
      return info(code, "Process exited with a general error.",
                  "Check the flow run logs for an unhandled exception or assertion error.");
    case 126:
      return info(code, "Command found but not executable (permission denied).",
                  "Check file permissions on the entrypoint script or binary.");
    case 127:
      return info(code, "Command not found.",
                  "Verify that the command is installed in the execution environment; check "
                  "PATH.");
    case 137:
      return info(code, "Process was killed, likely due to an out-of-memory (OOM) condition.",
                  "Increase the memory allocation for the flow run infrastructure.");
    case 143:
      return info(code,
                  "Process received SIGTERM via the container runtime. This is the "
                  "containerized equivalent of exit code -15.",
                  "If this was caused by cancellation or a scaling event, no action is needed.",
                  RunLogLevel::kInfo);
    case 247:
      return info(code, "Process was terminated due to high memory usage.",
                  "Increase the memory allocation for the flow run infrastructure.");
    default:
      return info(code, "Process exited with an unexpected status code.",
                  "Check the flow run logs and infrastructure logs for more details.");
  }
}

std::string exit_line(const std::string& run_name, const ExitInfo& info) {
  if (info.status_code == 0) {
    return "Process for flow run '" + run_name + "' exited cleanly.";
  }
  return "Process for flow run '" + run_name +
         "' exited with status code: " + std::to_string(info.status_code) + "; " + info.explanation;
}

}  // namespace pc
