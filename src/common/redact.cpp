#include "common/redact.hpp"

#include <algorithm>

namespace pc {

void Redactor::add_secret(std::string_view secret) {
  if (secret.size() < 3) {
    return;
  }
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) {
    return;
  }
  secrets_.emplace_back(secret);
  // Longest first, so that a secret containing another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::redact(std::string_view text) const {
  std::string out = redact_url_userinfo(text);
  for (const auto& secret : secrets_) {
    std::string::size_type pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

std::string redact_url_userinfo(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::string_view::size_type pos = 0;
  while (true) {
    auto scheme_end = text.find("://", pos);
    if (scheme_end == std::string_view::npos) {
      break;
    }
    auto authority_start = scheme_end + 3;
    // The authority ends at the first '/', '?', '#' or whitespace.
    auto authority_end = text.find_first_of("/?# \t\r\n\"'", authority_start);
    if (authority_end == std::string_view::npos) {
      authority_end = text.size();
    }
    auto at = text.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
    out.append(text.substr(pos, authority_start - pos));
    if (at != std::string_view::npos && at >= authority_start && at < authority_end) {
      auto userinfo = text.substr(authority_start, at - authority_start);
      auto colon = userinfo.find(':');
      if (colon == std::string_view::npos) {
        out.append(kRedacted);
      } else {
        out.append(userinfo.substr(0, colon + 1));
        out.append(kRedacted);
      }
      out.append(text.substr(at, authority_end - at));
    } else {
      out.append(text.substr(authority_start, authority_end - authority_start));
    }
    pos = authority_end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace pc
