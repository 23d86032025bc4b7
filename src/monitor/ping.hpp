#pragma once
// Dead-man's-switch pings, with healthchecks.io's conventions (its "Pinging
// API"; Better Stack heartbeats accept the same success, /fail and /<exit
// status> URLs):
//
//   cycle starts         GET  <url>/start?rid=<run id>
//   cycle ends, exit 0   POST <url>?rid=<run id>       body: summary line + JSON
//   cycle ends, exit N   POST <url>/<N>?rid=<run id>   (1..255 = failure)
//
// `rid` pairs the start with its end, so overlapping cycles get the right
// durations. The URL is a secret: its path is the check's token. It is never
// logged; log lines name it as ping_url_for_display() does.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/exit_code.hpp"
#include "common/redact.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "monitor/delivery.hpp"

namespace pc {

// The final ping's body is cut to this many bytes: self-hosted Healthchecks
// keeps the first 10 kB of a body by default (healthchecks.io 100 kB).
inline constexpr std::size_t kPingBodyLimit = 10000;

// `base` with `suffix` ("/start", "/1" or "") appended to its path, before any
// query string, and "rid=<run_id>" added to the query (unless run_id is empty).
std::string ping_url(std::string_view base, std::string_view suffix, std::string_view run_id);

// "scheme://host[:port]/***" (no user-info, path or query): how logs name a
// ping URL.
std::string ping_url_for_display(std::string_view url);

// The final ping's body: `summary_line`, a newline, `summary_json`, redacted,
// cut to `limit` bytes at a UTF-8 boundary with a note saying so.
std::string ping_body(std::string_view summary_line, std::string_view summary_json,
                      const Redactor& redactor, std::size_t limit = kPingBodyLimit);

// Sends the pings of one cycle. Never throws for network failures and never
// takes more than kMonitorRequestBudget per ping; a failed ping is a warning.
class Pinger {
 public:
  Pinger(std::string url, std::string run_id, HttpTransport& transport, Sleeper& sleeper,
         const Clock& clock, const Logger& log);

  // GET <url>/start. True when a 2xx answer came.
  bool start();
  // POST <url> for kOk, POST <url>/<code> otherwise, with `body`, sent by
  // `deadline` at the latest. True when a 2xx answer came.
  bool finish(ExitCode code, std::string body,
              std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

 private:
  bool send(const std::string& what, HttpRequest request, std::string_view suffix,
            std::optional<std::chrono::steady_clock::time_point> deadline);

  std::string url_;
  std::string run_id_;
  HttpTransport& transport_;
  Sleeper& sleeper_;
  const Clock& clock_;
  const Logger& log_;
};

}  // namespace pc
