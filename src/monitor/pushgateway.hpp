#pragma once
// Pushing the cycle's gauges (monitor/metrics.hpp) to a Prometheus
// Pushgateway, into the group <url>/metrics/job/<job>{/<label>/<value>}.
//
// PUT replaces every series of the group, POST only the metric families it
// carries. prefect_cycle_last_success_timestamp_seconds must survive failed
// cycles (it is what the "no success for too long" alert reads), so:
//   exit 0     PUT  every family, last_success included: the group is exactly
//                   this cycle's (stale families of older versions go too);
//   otherwise  POST every family but last_success: each one is replaced whole
//                   (run counts of the previous cycle are replaced, not added)
//                   and the last success stays as it was.
// One request per cycle, one group, the same labels on every series.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "cycle/summary.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "monitor/delivery.hpp"

namespace pc {

using GroupingLabels = std::vector<std::pair<std::string, std::string>>;

// RFC 4648 section 5 base64 (URL and file name safe alphabet), with padding.
std::string base64url(std::string_view data);

// "/<name>/<value>" for a grouping path: the value percent-encoded, or
// "/<name>@base64/<base64url>" when it contains '/' (the Pushgateway's router
// would split an escaped %2F), is empty, or is "." or "..".
std::string pushgateway_path_label(std::string_view name, std::string_view value);

// <base>/metrics/job/<job>{/<label>/<value>}; `base` without a trailing '/'.
std::string pushgateway_group_url(std::string_view base, std::string_view job,
                                  const GroupingLabels& grouping);

// <base>/-/ready: 200 when the Pushgateway is up; pushes nothing.
std::string pushgateway_ready_url(std::string_view base);

// The push of one cycle's gauges: PUT when it exited 0, else POST (above).
HttpRequest cycle_metrics_push(std::string_view base, std::string_view job,
                               const GroupingLabels& grouping, const CycleSummary& summary);

// "scheme://host[:port]/path" without the user-info's password, for logs.
std::string pushgateway_url_for_display(std::string_view url);

// Sends cycle_metrics_push() within the delivery bounds and by `deadline`;
// logs the outcome (a warning when it failed). True when it was accepted.
bool push_cycle_metrics(
    HttpTransport& transport, Sleeper& sleeper, const Clock& clock, const Logger& log,
    std::string_view base, std::string_view job, const GroupingLabels& grouping,
    const CycleSummary& summary,
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

}  // namespace pc
