#pragma once
// A flow run process's exit as Prefect's worker reports it on the run's Logs
// tab: its status code (a signal death is minus the signal, as Python's
// Popen.returncode: -9 for SIGKILL) and Prefect's explanation and
// resolution for it (prefect/_internal/infrastructure_exit_codes.py), so a
// run killed for memory says so where Prefect's users look.

#include <string>

#include "prefect/events.hpp"
#include "process/process.hpp"

namespace pc {

struct ExitInfo {
  int status_code = 0;                      // Prefect's: -signal, else the exit code
  std::string explanation;                  // "Process exited due to a SIGKILL signal. ..."
  std::string resolution;                   // what to do about it
  RunLogLevel level = RunLogLevel::kError;  // info for a clean exit or a cancellation
};

ExitInfo exit_info(const ExitStatus& status);

// "Process for flow run 'name' exited with status code: -9; <explanation>"
// (Prefect's wording), or "... exited cleanly." for 0.
std::string exit_line(const std::string& run_name, const ExitInfo& info);

}  // namespace pc
