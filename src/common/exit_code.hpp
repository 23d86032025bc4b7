#pragma once
// The process exit codes of prefect-cycle. Stable: documented in the README.
// Only app_main() turns one of these into the process status.

#include <string_view>

namespace pc {

enum class ExitCode : int {
  kOk = 0,             // cycle finished; every run it executed completed (or none)
  kRunsFailed = 1,     // cycle finished; at least one run it executed failed or crashed
  kUsage = 2,          // usage or configuration error; nothing changed on the server
  kApi = 3,            // Prefect API unreachable, unauthorized or incompatible
  kPreflight = 4,      // repository, code sync, requirements or database check failed
  kWaitTimeout = 5,    // wait timed out with runs still active
  kInterrupted = 130,  // SIGINT, after cleanup
  kTerminated = 143,   // SIGTERM, after cleanup
};

// A short lower-case name for logs and the JSON summary, e.g. "wait_timeout".
std::string_view exit_code_name(ExitCode code);

// The exit code of a cycle ended by stop signal `sig`: 130 for SIGINT, 143
// for SIGTERM (and any other signal the cycle treats as a stop).
ExitCode exit_code_for_signal(int sig);

// The signal's name for lines and the summary: "SIGINT" or "SIGTERM".
std::string_view stop_signal_name(int sig);

inline int to_int(ExitCode code) {
  return static_cast<int>(code);
}

}  // namespace pc
