#pragma once
// One URL module: parsing with libcurl's URL API (curl_url), and the
// user-info operations that keep credentials out of messages and out of what
// we store (redaction, stripping). Every part is returned as written in the
// URL (not percent-decoded), so that a password found here is the text a
// Redactor must look for.

#include <optional>
#include <string>
#include <string_view>

namespace pc {

struct Url {
  std::string scheme;    // as curl reports it (lower case)
  std::string user;      // "" when the URL has no user-info
  std::string password;  // "" when there is no ':' in the user-info, or nothing after it
  bool has_userinfo = false;
  bool has_password = false;  // a ':' in the user-info, even "user:@host"
  std::string host;           // IPv6 addresses keep their brackets: "[::1]"
  std::string port;           // "" when the URL names none
  std::string path;           // "/" when the URL has none; dot segments kept
  std::string query;          // without the '?'
  std::string fragment;       // without the '#'
};

// Parses an absolute URL (any scheme, e.g. postgresql:// too). Returns nullopt
// and, when `error` is given, sets it to curl's reason ("Port number was not a
// decimal number between 0 and 65535"); the reason never quotes the URL.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

// parse_url() for an http or https URL written scheme://host...; nullopt for
// anything else (also "http:/host" and "http:///host", which curl forgives).
std::optional<Url> parse_http_url(std::string_view text);

// Whether curl reads a user-info in `authority`, the text from "://" on
// ("://u:p'w@host"), whatever scheme stands before it: curl refuses some
// schemes (over 40 characters, a digit first) but reads every authority
// alike. Only what curl accepts counts (no rule for refused text).
bool curl_reads_userinfo(std::string_view authority);

// Where the user-info of `url` lies: `begin` just after "://", `end` at its
// '@'. Found by parse_url() when curl accepts the URL; otherwise (a password
// with a raw '@', a host curl refuses) conservatively: the authority ends at
// the first '/', '?' or '#', and the user-info at its last '@'. nullopt when
// there is no "://" or no '@' in the authority.
struct UserinfoSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
};
std::optional<UserinfoSpan> find_userinfo(std::string_view url);

// A user-info ("user:pw", "token") as redact_userinfo() shows it: "user:***", "***".
std::string redacted_userinfo(std::string_view userinfo);

// `url` with the password of its user-info replaced by "***", the rest kept
// as written: "https://user:pw@host/x" -> "https://user:***@host/x". A user
// without a password ("https://token@host") is taken for a token and
// replaced whole: "https://***@host".
std::string redact_userinfo(std::string_view url);

// `url` without its user-info and '@': "https://u:p@host/x" -> "https://host/x".
std::string strip_userinfo(std::string_view url);

// The user-info of `url` split at its first ':' (as written, not decoded);
// `password` is nullopt when there is no ':' ("https://token@host").
struct Userinfo {
  std::string user;
  std::optional<std::string> password;
};
std::optional<Userinfo> userinfo_of(std::string_view url);

// The password a connection string carries, as written: the user-info's in
// "scheme://user:password@host..." (any scheme, postgresql:// too), else a
// libpq key/value "password=..." (quoted values may hold spaces and \'
// escapes, kept as written). nullopt when there is none or it is empty. The
// one place the configuration's redactor and the database check learn a
// URL's secret from.
std::optional<std::string> password_of(std::string_view connection);

}  // namespace pc
