#include "common/redact.hpp"

#include <algorithm>
#include <cctype>

#include "common/url.hpp"

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
  // Each "scheme://authority" in the text goes through the URL module; the
  // authority ends where a URL's would, or at whitespace or a quote.
  auto is_scheme_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  };
  std::string out;
  out.reserve(text.size());
  std::string_view::size_type pos = 0;
  while (true) {
    auto scheme_end = text.find("://", pos);
    if (scheme_end == std::string_view::npos) {
      break;
    }
    auto authority_end = text.find_first_of("/?# \t\r\n\"'", scheme_end + 3);
    if (authority_end == std::string_view::npos) {
      authority_end = text.size();
    }
    auto scheme_begin = scheme_end;
    while (scheme_begin > pos && is_scheme_char(text[scheme_begin - 1])) {
      --scheme_begin;
    }
    out.append(text.substr(pos, scheme_begin - pos));
    out.append(redact_userinfo(text.substr(scheme_begin, authority_end - scheme_begin)));
    pos = authority_end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace pc
