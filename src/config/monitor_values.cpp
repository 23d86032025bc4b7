#include "config/monitor_values.hpp"

#include <algorithm>
#include <regex>

#include "common/error.hpp"
#include "common/redact.hpp"
#include "common/text.hpp"
#include "common/url.hpp"
#include "config/settings.hpp"

namespace pc {
namespace {

void strip_trailing_slashes(std::string& url) {
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
}

}  // namespace

std::string parse_ping_url(const std::string& where, const std::string& value) {
  std::string url = trim(value);
  const auto parsed = parse_http_url(url);
  // Never echo the value: its path is the check's token.
  const std::string shown = parsed ? "\"" + parsed->scheme + "://" + parsed->host +
                                         (parsed->port.empty() ? "" : ":" + parsed->port) + "/" +
                                         std::string(kRedacted) + "\""
                                   : "(not shown: it is a secret)";
  const std::string expected =
      " (expected http(s)://host/<check>, e.g. https://hc-ping.com/<uuid> or "
      "https://hc-ping.com/<ping-key>/<slug>)";
  // curl accepted the URL, so a '?' or '#' in it starts its query or fragment.
  if (!parsed || url.find('#') != std::string::npos) {
    throw usage_error(where + ": invalid URL " + shown + expected, Hint::kConfigValue);
  }
  std::string path = parsed->path;
  strip_trailing_slashes(path);
  if (path.empty()) {
    throw usage_error(where + ": URL " + shown + " has no path, so no check token" + expected,
                      Hint::kConfigValue);
  }
  // Only the path loses its trailing slashes, not a query.
  const auto query = std::min(url.find('?'), url.size());
  std::string before_query = url.substr(0, query);
  strip_trailing_slashes(before_query);
  return before_query + url.substr(query);
}

std::string parse_pushgateway_url(const std::string& where, const std::string& value) {
  std::string url = trim(value);
  const std::string expected =
      " (expected the Pushgateway's base URL http(s)://host:port, e.g. http://pushgateway:9091; "
      "prefect-cycle adds /metrics/job/...)";
  const auto parsed = parse_http_url(url);
  if (!parsed || url.find_first_of("?#") != std::string::npos) {
    throw usage_error(where + ": invalid URL \"" + redact_url_userinfo(value) + "\"" + expected,
                      Hint::kConfigValue);
  }
  if (parsed->path.find("/metrics/") != std::string::npos || parsed->path == "/metrics") {
    throw usage_error(
        where + ": URL \"" + redact_url_userinfo(value) + "\" already contains /metrics" + expected,
        Hint::kConfigValue);
  }
  strip_trailing_slashes(url);
  return url;
}

std::vector<std::pair<std::string, std::string>> parse_grouping_labels(const std::string& where,
                                                                       const std::string& value) {
  static const std::regex kLabelName(R"(^[a-zA-Z_][a-zA-Z0-9_]*$)");
  const std::string expected =
      " (expected a comma list of label=value, e.g. pool=etl,env=prod; label names match "
      "[a-zA-Z_][a-zA-Z0-9_]*, not job, not __*)";
  std::vector<std::pair<std::string, std::string>> labels;
  for (const auto& item : split_list(value)) {
    auto eq = item.find('=');
    std::string name = trim(item.substr(0, eq));
    std::string label_value = eq == std::string::npos ? "" : trim(item.substr(eq + 1));
    if (eq == std::string::npos || label_value.empty()) {
      throw usage_error(where + ": invalid label \"" + item + "\"" + expected, Hint::kConfigValue);
    }
    if (!std::regex_match(name, kLabelName) || name == "job" || name.rfind("__", 0) == 0) {
      throw usage_error(where + ": invalid label name \"" + name + "\"" + expected,
                        Hint::kConfigValue);
    }
    if (std::any_of(labels.begin(), labels.end(), [&](const auto& l) { return l.first == name; })) {
      throw usage_error(
          where + ": label \"" + name + "\" given twice in \"" + value + "\"" + expected,
          Hint::kConfigValue);
    }
    labels.emplace_back(std::move(name), std::move(label_value));
  }
  if (labels.empty()) {
    throw usage_error(where + ": empty list \"" + value + "\"" + expected, Hint::kConfigValue);
  }
  return labels;
}

std::vector<std::string> ping_url_secrets(const std::string& url) {
  constexpr std::size_t kMinTokenSegment = 16;
  std::vector<std::string> secrets;
  const auto parsed = parse_http_url(url);
  if (!parsed) {
    if (!url.empty()) {
      secrets.push_back(url);
    }
    return secrets;
  }
  secrets.push_back(url);
  // As written: curl accepted the URL, so its path begins at the first '/',
  // '?' or '#' after "://", and its query (if any) follows.
  const auto authority_end = std::min(url.find_first_of("/?#", url.find("://") + 3), url.size());
  const std::string path_and_query = url.substr(authority_end, url.find('#') - authority_end);
  if (path_and_query.size() > 1) {
    secrets.push_back(path_and_query);
  }
  const std::string path = path_and_query.substr(0, path_and_query.find('?'));
  std::size_t start = 0;
  while (start < path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    if (end - start >= kMinTokenSegment) {
      secrets.push_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  if (auto password = password_of(url)) {
    secrets.push_back(*password);
  }
  return secrets;
}

std::string show_grouping_labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    out += (out.empty() ? "" : ",") + name + "=" + value;
  }
  return out;
}

}  // namespace pc
