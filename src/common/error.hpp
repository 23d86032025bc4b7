#pragma once
// The one exception type of prefect-cycle. It carries the exit code class the
// failure belongs to, so that app_main() can map any failure to the design's
// exit-code table without knowing where it came from, and the Hint that says
// what the user should change. what() is "<message>; fix: <hint text>".
// Messages must already be free of secrets (see common/redact.hpp) and say
// where, what and the bad value; the hint says the fix.

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/exit_code.hpp"
#include "common/hint.hpp"

namespace pc {

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message, Hint hint)
      : std::runtime_error(message + "; fix: " + std::string(hint_text(hint))),
        code_(code),
        hint_(hint),
        message_(message) {}
  ExitCode code() const { return code_; }
  Hint hint() const { return hint_; }
  // The message without the hint.
  const std::string& message() const { return message_; }

 private:
  ExitCode code_;
  Hint hint_;
  std::string message_;
};

// Bad configuration or usage (exit 2).
inline Error usage_error(const std::string& message, Hint hint) {
  return Error(ExitCode::kUsage, message, hint);
}
// The API could not be reached, refused us, or answered something unusable (exit 3).
inline Error api_error(const std::string& message, Hint hint) {
  return Error(ExitCode::kApi, message, hint);
}
// Repository, code sync, requirements or database check failed (exit 4).
inline Error preflight_error(const std::string& message, Hint hint) {
  return Error(ExitCode::kPreflight, message, hint);
}

// The Error an outcome failed with: nullopt when `error` is null; any other
// exception (a bug of ours, std::bad_alloc) is rethrown.
inline std::optional<Error> error_of(const std::exception_ptr& error) {
  if (!error) {
    return std::nullopt;
  }
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return e;
  }
}

}  // namespace pc
