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
  // authority ends where a URL's would, or at whitespace or a quote. Every
  // "://" is looked at, also one that ends the authority before it
  // ("x://https://u:pw@h"): user-infos never overlap, as each ends before the
  // next "://".
  auto is_scheme_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  };
  std::string out;
  out.reserve(text.size());
  std::string_view::size_type pos = 0;
  for (auto scheme_end = text.find("://"); scheme_end != std::string_view::npos;
       scheme_end = text.find("://", scheme_end + 1)) {
    auto scheme_begin = scheme_end;
    while (scheme_begin > 0 && is_scheme_char(text[scheme_begin - 1])) {
      --scheme_begin;
    }
    auto authority_end = std::min(text.find_first_of("/?# \t\r\n\"'", scheme_end + 3), text.size());
    // A quote may belong to a user-info ("https://u:pa'ss@host"): when curl
    // reads the authority past the quotes as one with user-info, it wins.
    const auto unquoted_end =
        std::min(text.find_first_of("/?# \t\r\n", scheme_end + 3), text.size());
    if (unquoted_end > authority_end &&
        curl_reads_userinfo(text.substr(scheme_end, unquoted_end - scheme_end))) {
      authority_end = unquoted_end;
    }
    const auto url = text.substr(scheme_begin, authority_end - scheme_begin);
    if (auto span = find_userinfo(url)) {
      const auto begin = scheme_begin + span->begin;
      out.append(text.substr(pos, begin - pos));
      out.append(redacted_userinfo(url.substr(span->begin, span->end - span->begin)));
      pos = scheme_begin + span->end;
    }
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace pc
