#include "monitor/pushgateway.hpp"

#include "common/redact.hpp"
#include "monitor/metrics.hpp"

namespace pc {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (is_unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
    }
  }
  return out;
}

}  // namespace

std::string base64url(std::string_view data) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = data.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(data[i]) << 16;
    if (rest == 2) {
      v |= static_cast<unsigned char>(data[i + 1]) << 8;
    }
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
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
  return "/" + std::string(name) + "/" + percent_encode(value);
}

std::string pushgateway_group_url(std::string_view base, std::string_view job,
                                  const GroupingLabels& grouping) {
  std::string url(base);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  url += "/metrics" + pushgateway_path_label("job", job);
  for (const auto& [name, value] : grouping) {
    url += pushgateway_path_label(name, value);
  }
  return url;
}

std::string pushgateway_ready_url(std::string_view base) {
  std::string url(base);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  return url + "/-/ready";
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
