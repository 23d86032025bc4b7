#include "monitor/ping.hpp"

#include "common/url.hpp"

namespace pc {
namespace {

// "scheme://host[:port]" of a URL, without user-info; nullopt for no URL.
std::optional<std::string> origin_of(std::string_view url) {
  auto parsed = parse_url(strip_userinfo(url));
  if (!parsed) {
    return std::nullopt;
  }
  return parsed->scheme + "://" + parsed->host + (parsed->port.empty() ? "" : ":" + parsed->port);
}

}  // namespace

std::string ping_url(std::string_view base, std::string_view suffix, std::string_view run_id) {
  std::string url(base);
  std::string query;
  if (auto q = url.find('?'); q != std::string::npos) {
    query = url.substr(q);
    url.resize(q);
  }
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  url += suffix;
  if (!run_id.empty()) {
    query += (query.empty() ? "?" : (query.size() > 1 ? "&" : "")) + std::string("rid=");
    query += run_id;
  }
  return url + query;
}

std::string ping_url_for_display(std::string_view url) {
  auto origin = origin_of(url);
  return origin ? *origin + "/" + std::string(kRedacted) : std::string(kRedacted);
}

std::string ping_body(std::string_view summary_line, std::string_view summary_json,
                      const Redactor& redactor, std::size_t limit) {
  std::string body = redactor.redact(std::string(summary_line) + "\n" + std::string(summary_json));
  if (body.size() <= limit) {
    return body;
  }
  const std::string note =
      "\n... (cut to " + std::to_string(limit) + " of " + std::to_string(body.size()) + " bytes)";
  std::size_t keep = limit > note.size() ? limit - note.size() : 0;
  // Do not split a UTF-8 sequence: back up over continuation bytes.
  while (keep > 0 && (static_cast<unsigned char>(body[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  body.resize(keep);
  return body + note;
}

Pinger::Pinger(std::string url, std::string run_id, HttpTransport& transport, Sleeper& sleeper,
               const Clock& clock, const Logger& log)
    : url_(std::move(url)),
      run_id_(std::move(run_id)),
      transport_(transport),
      sleeper_(sleeper),
      clock_(clock),
      log_(log) {}

bool Pinger::start() {
  HttpRequest request;
  request.method = "GET";
  return send("start ping", std::move(request), "/start", std::nullopt);
}

bool Pinger::finish(ExitCode code, std::string body,
                    std::optional<std::chrono::steady_clock::time_point> deadline) {
  HttpRequest request;
  request.method = "POST";
  request.body = std::move(body);
  request.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
  const std::string suffix = code == ExitCode::kOk ? "" : "/" + std::to_string(to_int(code));
  const std::string what =
      code == ExitCode::kOk ? "success ping" : "exit-status ping " + std::to_string(to_int(code));
  return send(what, std::move(request), suffix, deadline);
}

bool Pinger::send(const std::string& what, HttpRequest request, std::string_view suffix,
                  std::optional<std::chrono::steady_clock::time_point> deadline) {
  request.url = ping_url(url_, suffix, run_id_);
  const std::string shown = ping_url_for_display(url_) + std::string(suffix);
  const std::string method = request.method;
  DeliveryResult result =
      deliver_bounded(transport_, sleeper_, clock_, std::move(request), DeliveryBounds{}, deadline);
  for (const auto& outcome : result.attempt_outcomes) {
    log_.debug(method + " " + shown + " -> " + outcome);
  }
  const std::string timing = std::to_string(result.attempts) + " attempt(s), " +
                             std::to_string(result.elapsed.count()) + " ms";
  if (result.delivered) {
    log_.info("monitoring: " + what + " sent to " + shown + " (HTTP " +
              std::to_string(result.status) + ", " + timing + ")");
    return true;
  }
  log_.warn("monitoring: " + what + " to " + shown + " failed (" + timing + "): " + result.error +
            "; the cycle's outcome is unchanged (PREFECT_CYCLE_PING_URL)");
  return false;
}

}  // namespace pc
