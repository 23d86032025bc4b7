#include "http/api_client.hpp"

#include <algorithm>

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;

std::string reason_phrase(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "HTTP " + std::to_string(status);
  }
}

// The server's explanation: FastAPI's "detail" (string or validation list) or
// Prefect's "exception_message"; else the start of the body.
std::string server_detail(const std::string& body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    for (const char* key : {"detail", "exception_message", "message"}) {
      if (auto it = parsed.find(key); it != parsed.end()) {
        if (it->is_string()) {
          return it->get<std::string>();
        }
        return it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(0, 500);
      }
    }
  }
  std::string text = body.substr(0, 200);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string format_ms(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

}  // namespace

std::string url_encode_segment(std::string_view segment) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string base64_encode(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < data.size()) {
    unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
    i += 3;
  }
  if (i + 1 == data.size()) {
    unsigned n = static_cast<unsigned char>(data[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

ApiClient::ApiClient(HttpTransport& transport, ApiOptions options, Logger log, RetryPolicy policy,
                     Sleeper& sleeper)
    : transport_(transport),
      options_(std::move(options)),
      log_(std::move(log)),
      policy_(policy),
      sleeper_(sleeper),
      random_(std::random_device{}()) {}

HttpRequest ApiClient::build(std::string_view method, std::string_view path,
                             const std::optional<nlohmann::json>& body) const {
  HttpRequest request;
  request.method = std::string(method);
  request.url = options_.base_url + std::string(path);
  request.timeout = options_.request_timeout;
  request.headers = {
      {"Accept", "application/json"},
      {"X-PREFECT-API-VERSION", "0.8.4"},
      {"User-Agent", std::string("prefect-cycle/") + PREFECT_CYCLE_VERSION},
  };
  if (!options_.auth_string.empty()) {
    request.headers.emplace_back("Authorization", "Basic " + base64_encode(options_.auth_string));
  } else if (!options_.api_key.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + options_.api_key);
  }
  if (body) {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return request;
}

ApiResponse ApiClient::request(std::string_view method, std::string_view path,
                               const std::optional<nlohmann::json>& body,
                               const RequestOptions& options) {
  const HttpRequest request = build(method, path, body);
  const std::string what = std::string(method) + " " + request.url;
  const auto start = Clock::now();
  const auto budget = options.deadline.value_or(policy_.max_total);
  const int max_attempts = options.retry ? std::max(1, policy_.max_attempts) : 1;
  std::uniform_real_distribution<double> jitter(-1.0, 1.0);
  std::chrono::milliseconds waited{0};  // the delays slept so far

  for (int attempt = 1;; ++attempt) {
    HttpRequest attempt_request = request;
    // Never let one attempt run past the call's deadline.
    auto left =
        budget - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    attempt_request.timeout =
        std::max(std::chrono::milliseconds(100), std::min(request.timeout, left));

    std::string retry_reason;
    bool unreachable = false;
    std::optional<std::chrono::milliseconds> retry_after;
    const auto sent = Clock::now();
    ++attempts_;
    try {
      HttpResponse response = transport_.send(attempt_request);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
      log_.debug(what + " -> " + std::to_string(response.status) + " (" +
                 std::to_string(ms.count()) + " ms)");
      const long status = response.status;
      if ((status >= 200 && status < 300) || status == 404 || status == 409) {
        ApiResponse result;
        result.status = status;
        if (!response.body.empty()) {
          result.body = nlohmann::json::parse(response.body, nullptr, false);
          if (result.body.is_discarded()) {
            if (status >= 200 && status < 300) {
              throw api_error(what + ": malformed JSON in the response (" +
                              std::to_string(response.body.size()) + " bytes)");
            }
            result.body = nullptr;
          }
        }
        return result;
      }
      if (!is_retryable_status(status)) {
        std::string detail = server_detail(response.body);
        std::string message = what + ": " + std::to_string(status) + " " + reason_phrase(status);
        if (!detail.empty()) {
          message += ": " + detail;
        }
        if (status == 401 || status == 403) {
          message +=
              " (check PREFECT_API_AUTH_STRING for a self-hosted server with "
              "PREFECT_SERVER_API_AUTH_STRING, or PREFECT_API_KEY for Prefect Cloud)";
        }
        throw HttpStatusError(message, status, detail);
      }
      retry_reason = std::to_string(status) + " " + reason_phrase(status);
      if (auto header = response.header("Retry-After")) {
        retry_after = parse_retry_after(*header);
      }
      if (attempt >= max_attempts) {
        throw HttpStatusError(what + ": " + retry_reason + " after " + std::to_string(attempt) +
                                  " attempt(s): " + server_detail(response.body),
                              status, server_detail(response.body));
      }
    } catch (const TransportError& e) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
      log_.debug(what + " -> " + e.what() + " (" + std::to_string(ms.count()) + " ms)");
      retry_reason = e.what();
      unreachable = true;
      if (attempt >= max_attempts) {
        throw api_error("cannot reach Prefect API at " + options_.base_url + " (" + what +
                        "): " + e.what() + " (after " + std::to_string(attempt) + " attempt(s))");
      }
    }

    auto delay = retry_after ? std::min(*retry_after, policy_.cap)
                             : backoff_delay(policy_, attempt - 1, jitter(random_));
    auto elapsed = std::max(
        waited, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start));
    if (elapsed + delay >= budget) {
      throw api_error(
          (unreachable ? "cannot reach Prefect API at " + options_.base_url + " (" + what + ")"
                       : what) +
          ": " + retry_reason + "; giving up after " + std::to_string(attempt) + " attempt(s) in " +
          format_ms(elapsed) + " (retry budget " + format_ms(budget) + ")");
    }
    log_.warn(what + ": " + retry_reason + "; retry " + std::to_string(attempt) + " of " +
              std::to_string(max_attempts - 1) + " in " + format_ms(delay));
    waited += delay;
    if (!sleeper_.sleep_for(delay)) {
      throw api_error(what + ": " + retry_reason + "; not retried: stop requested");
    }
  }
}

}  // namespace pc
