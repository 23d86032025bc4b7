#include "monitor/pushgateway.hpp"

#include "common/redact.hpp"
#include "http/api_client.hpp"
#include "monitor/metrics.hpp"

namespace pc {
namespace {

std::string without_trailing_slashes(std::string_view url) {
  while (!url.empty() && url.back() == '/') {
    url.remove_suffix(1);
  }
  return std::string(url);
}

}  // namespace

std::string base64url(std::string_view data) {
  std::string out = base64_encode(data);
  for (char& c : out) {
    if (c == '+') {
      c = '-';
    } else if (c == '/') {
      c = '_';
    }
  }
  return out;
}

std::string pushgateway_path_label(std::string_view name, std::string_view value) {
  const bool needs_base64 =
      value.empty() || value == "." || value == ".." || value.find('/') != std::string_view::npos;
  if (needs_base64) {
    // The Pushgateway reads an empty value as "=" (one padding character).
    return "/" + std::string(name) + "@base64/" + (value.empty() ? "=" : base64url(value));
  }
  return "/" + std::string(name) + "/" + url_encode_segment(value);
}

std::string pushgateway_group_url(std::string_view base, std::string_view job,
                                  const GroupingLabels& grouping) {
  std::string url =
      without_trailing_slashes(base) + "/metrics" + pushgateway_path_label("job", job);
  for (const auto& [name, value] : grouping) {
    url += pushgateway_path_label(name, value);
  }
  return url;
}

std::string pushgateway_ready_url(std::string_view base) {
  return without_trailing_slashes(base) + "/-/ready";
}

HttpRequest cycle_metrics_push(std::string_view base, std::string_view job,
                               const GroupingLabels& grouping, const CycleSummary& summary) {
  HttpRequest request;
  request.method = summary.exit_code == ExitCode::kOk ? "PUT" : "POST";
  request.url = pushgateway_group_url(base, job, grouping);
  request.body = render_cycle_metrics(summary);
  request.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}};
  return request;
}

std::string pushgateway_url_for_display(std::string_view url) {
  return redact_url_userinfo(url);
}

bool push_cycle_metrics(HttpTransport& transport, Sleeper& sleeper, const Clock& clock,
                        const Logger& log, std::string_view base, std::string_view job,
                        const GroupingLabels& grouping, const CycleSummary& summary,
                        std::optional<std::chrono::steady_clock::time_point> deadline) {
  HttpRequest request = cycle_metrics_push(base, job, grouping, summary);
  const std::string what = request.method + " " + pushgateway_url_for_display(request.url);
  DeliveryResult result =
      deliver_bounded(transport, sleeper, clock, std::move(request), DeliveryBounds{}, deadline);
  for (const auto& outcome : result.attempt_outcomes) {
    log.debug(what + " -> " + outcome);
  }
  const std::string timing = std::to_string(result.attempts) + " attempt(s), " +
                             std::to_string(result.elapsed.count()) + " ms";
  if (result.delivered) {
    log.info("monitoring: metrics pushed: " + what + " (HTTP " + std::to_string(result.status) +
             ", " + timing + ")");
    return true;
  }
  log.warn("monitoring: metrics push " + what + " failed (" + timing + "): " + result.error +
           "; the cycle's outcome is unchanged (PREFECT_CYCLE_PUSHGATEWAY_URL)");
  return false;
}

}  // namespace pc
