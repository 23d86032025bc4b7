#pragma once
// Parsers of the monitoring settings (PREFECT_CYCLE_PING_URL,
// PREFECT_CYCLE_PUSHGATEWAY_*). Like the others in settings.hpp, each throws
// pc::Error(kUsage) naming `where`, the value and what is allowed -- except
// that a ping URL is a secret, so its messages show only scheme and host.

#include <string>
#include <utility>
#include <vector>

namespace pc {

// An http(s) URL with a path (the check's token), e.g. https://hc-ping.com/<uuid>;
// trailing '/' removed, a query kept.
std::string parse_ping_url(const std::string& where, const std::string& value);

// The base URL of a Pushgateway, e.g. http://pushgateway:9091 (a path prefix
// and user:pass@ allowed; no query, no /metrics/...); trailing '/' removed.
std::string parse_pushgateway_url(const std::string& where, const std::string& value);

// A comma list of label=value: Prometheus label names, not "job" (the job
// has its own setting) nor "__..."; each name once; values non-empty.
std::vector<std::pair<std::string, std::string>> parse_grouping_labels(const std::string& where,
                                                                       const std::string& value);

// What to register with the Redactor for a ping URL: the URL, its path with
// the query, each path segment of 16 characters or more (a UUID, a ping key,
// a heartbeat token) and any user-info password. Shorter segments ("ping",
// "api") are not secret alone and would mangle unrelated lines.
std::vector<std::string> ping_url_secrets(const std::string& url);

// "pool=etl,env=prod".
std::string show_grouping_labels(const std::vector<std::pair<std::string, std::string>>& labels);

}  // namespace pc
