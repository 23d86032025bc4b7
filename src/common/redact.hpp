#pragma once
// Redaction of secrets. Every line that leaves the process (log lines, error
// messages, the JSON summary, `config` output) passes through a Redactor, which
// replaces each registered secret with "***" and the password of any
// scheme://user:password@host URL in the text.

#include <string>
#include <string_view>
#include <vector>

namespace pc {

inline constexpr std::string_view kRedacted = "***";

class Redactor {
 public:
  // Registers a secret value. Empty values and values shorter than 3
  // characters are ignored (redacting "a" would mangle every line).
  void add_secret(std::string_view secret);

  // Returns `text` with every registered secret and URL password replaced.
  std::string redact(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

// Returns `url` with the password of its user-info part replaced by "***":
// "https://user:pw@host/x" -> "https://user:***@host/x". A user without a
// password ("https://token@host") is treated as a token and replaced too.
std::string redact_url_userinfo(std::string_view text);

}  // namespace pc
