#pragma once
// The one exception type of prefect-cycle. It carries the exit code class the
// failure belongs to, so that app_main() can map any failure to the design's
// exit-code table without knowing where it came from. Messages must already be
// free of secrets (see common/redact.hpp) and say where, what, and a fix.

#include <stdexcept>
#include <string>

#include "common/exit_code.hpp"

namespace pc {

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Bad configuration or usage (exit 2).
inline Error usage_error(const std::string& message) {
  return Error(ExitCode::kUsage, message);
}
// The API could not be reached, refused us, or answered something unusable (exit 3).
inline Error api_error(const std::string& message) {
  return Error(ExitCode::kApi, message);
}
// Repository, code sync, requirements or database check failed (exit 4).
inline Error preflight_error(const std::string& message) {
  return Error(ExitCode::kPreflight, message);
}

}  // namespace pc
