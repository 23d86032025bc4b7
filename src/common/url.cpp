#include "common/url.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "common/redact.hpp"

namespace pc {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlString {
  char* text = nullptr;
  CurlString() = default;
  CurlString(const CurlString&) = delete;
  CurlString& operator=(const CurlString&) = delete;
  ~CurlString() { curl_free(text); }
};

// One part of a parsed URL, as written; nullopt when the URL has none.
std::optional<std::string> get_part(CURLU* handle, CURLUPart part) {
  CurlString value;
  if (curl_url_get(handle, part, &value.text, 0) != CURLUE_OK || value.text == nullptr) {
    return std::nullopt;
  }
  return std::string(value.text);
}

// The authority begins after "scheme:" and the slashes curl accepts there.
std::size_t authority_begin(std::string_view url) {
  auto begin = url.find(':');
  while (begin < url.size() && (url[begin] == ':' || url[begin] == '/')) {
    ++begin;
  }
  return begin;
}

// The rule for text curl refuses: the authority ends at the first '/', '?'
// or '#' after "://", the user-info at the last '@' before that. Taking the
// last '@' redacts a password with a raw '@' whole.
std::optional<UserinfoSpan> find_userinfo_by_rule(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return std::nullopt;
  }
  const std::size_t begin = scheme_end + 3;
  const auto authority_end = std::min(url.find_first_of("/?#", begin), url.size());
  const auto at = url.substr(begin, authority_end - begin).rfind('@');
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  return UserinfoSpan{begin, begin + at};
}

}  // namespace

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  auto fail = [error](std::string reason) -> std::optional<Url> {
    if (error != nullptr) {
      *error = std::move(reason);
    }
    return std::nullopt;
  };
  if (text.find('\0') != std::string_view::npos) {
    return fail("the URL contains a NUL byte");
  }
  UrlHandle handle(curl_url());
  if (!handle) {
    return fail("out of memory");
  }
  const std::string owned(text);
  const CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, owned.c_str(),
                                    CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
  if (rc != CURLUE_OK) {
    return fail(curl_url_strerror(rc));
  }
  Url url;
  url.scheme = get_part(handle.get(), CURLUPART_SCHEME).value_or("");
  auto user = get_part(handle.get(), CURLUPART_USER);
  auto password = get_part(handle.get(), CURLUPART_PASSWORD);
  url.has_userinfo = user.has_value() || password.has_value();
  url.has_password = password.has_value();
  url.user = user.value_or("");
  url.password = password.value_or("");
  url.host = get_part(handle.get(), CURLUPART_HOST).value_or("");
  url.port = get_part(handle.get(), CURLUPART_PORT).value_or("");
  url.path = get_part(handle.get(), CURLUPART_PATH).value_or("/");
  url.query = get_part(handle.get(), CURLUPART_QUERY).value_or("");
  url.fragment = get_part(handle.get(), CURLUPART_FRAGMENT).value_or("");
  return url;
}

std::optional<Url> parse_http_url(std::string_view text) {
  auto url = parse_url(text);
  if (!url || (url->scheme != "http" && url->scheme != "https") || url->host.empty()) {
    return std::nullopt;
  }
  // curl forgives "http:/host" and "http:///host"; a setting that reads so is
  // a typo to report.
  const std::size_t slashes = url->scheme.size() + 1;
  if (text.substr(slashes, 2) != "//" || text.substr(slashes + 2, 1) == "/") {
    return std::nullopt;
  }
  return url;
}

bool curl_reads_userinfo(std::string_view authority) {
  auto url = parse_url("x" + std::string(authority));  // a scheme curl always takes
  return url && url->has_userinfo;
}

std::optional<UserinfoSpan> find_userinfo(std::string_view url) {
  if (auto parsed = parse_url(url); parsed && parsed->has_userinfo) {
    // curl accepted the URL, so its authority holds exactly the one '@' that
    // ends the user-info.
    const std::size_t begin = authority_begin(url);
    const auto at = url.find('@', begin);
    if (at != std::string_view::npos &&
        url.substr(begin, at - begin).find_first_of("/?#") == std::string_view::npos) {
      return UserinfoSpan{begin, at};
    }
  }
  // What curl refuses, or reads without user-info ("https://@host"), gets the
  // rule, so that nothing the rule would redact is missed.
  return find_userinfo_by_rule(url);
}

std::optional<Userinfo> userinfo_of(std::string_view url) {
  auto span = find_userinfo(url);
  if (!span) {
    return std::nullopt;
  }
  const std::string_view text = url.substr(span->begin, span->end - span->begin);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Userinfo{std::string(text), std::nullopt};
  }
  return Userinfo{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

std::string redacted_userinfo(std::string_view userinfo) {
  const auto colon = userinfo.find(':');
  std::string out(colon == std::string_view::npos ? std::string_view()
                                                  : userinfo.substr(0, colon + 1));
  out.append(kRedacted);
  return out;
}

std::string redact_userinfo(std::string_view url) {
  auto span = find_userinfo(url);
  if (!span) {
    return std::string(url);
  }
  return std::string(url.substr(0, span->begin)) +
         redacted_userinfo(url.substr(span->begin, span->end - span->begin)) +
         std::string(url.substr(span->end));
}

std::string strip_userinfo(std::string_view url) {
  auto span = find_userinfo(url);
  if (!span) {
    return std::string(url);
  }
  return std::string(url.substr(0, span->begin)) + std::string(url.substr(span->end + 1));
}

namespace {

// A libpq "keyword = value" pair's value after `at` (just past "password"):
// optional spaces, '=', optional spaces, then a single-quoted value (up to the
// closing quote, backslash escapes kept) or a bare one (up to white space).
std::optional<std::string> key_value_after(std::string_view text, std::size_t at) {
  auto skip_spaces = [&] {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) {
      ++at;
    }
  };
  skip_spaces();
  if (at >= text.size() || text[at] != '=') {
    return std::nullopt;
  }
  ++at;
  skip_spaces();
  std::string value;
  if (at < text.size() && text[at] == '\'') {
    for (++at; at < text.size() && text[at] != '\''; ++at) {
      if (text[at] == '\\' && at + 1 < text.size()) {
        value += text[at++];
      }
      value += text[at];
    }
  } else {
    for (; at < text.size() && text[at] != ' ' && text[at] != '\t'; ++at) {
      value += text[at];
    }
  }
  if (value.empty()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<std::string> password_of(std::string_view connection) {
  if (auto userinfo = userinfo_of(connection);
      userinfo && userinfo->password && !userinfo->password->empty()) {
    return userinfo->password;
  }
  constexpr std::string_view kKey = "password";
  for (auto at = connection.find(kKey); at != std::string_view::npos;
       at = connection.find(kKey, at + 1)) {
    const bool word_start = at == 0 || connection[at - 1] == ' ' || connection[at - 1] == '\t';
    if (!word_start) {
      continue;
    }
    if (auto value = key_value_after(connection, at + kKey.size())) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace pc
