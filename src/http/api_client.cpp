#include "http/api_client.hpp"

#include <algorithm>

#include "common/redact.hpp"

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

// One validation error of FastAPI/pydantic: "body.flow_runs.id: Input should be
// a valid UUID". The echoed `input` is left out: it may hold job variables.
std::string validation_entry(const nlohmann::json& entry) {
  if (!entry.is_object()) {
    return entry.is_string() ? entry.get<std::string>() : entry.dump();
  }
  std::string loc;
  if (auto it = entry.find("loc"); it != entry.end() && it->is_array()) {
    for (const auto& part : *it) {
      if (!loc.empty()) {
        loc += '.';
      }
      loc += part.is_string() ? part.get<std::string>() : part.dump();
    }
  }
  std::string msg = entry.value("msg", std::string());
  return loc.empty() ? msg : loc + ": " + msg;
}

std::string validation_list(const nlohmann::json& list) {
  std::string out;
  for (const auto& entry : list) {
    if (!out.empty()) {
      out += "; ";
    }
    out += validation_entry(entry);
  }
  return out;
}

// The server's explanation: FastAPI's "detail" (a string or a validation
// list), Prefect's "exception_message" (+ "exception_detail" for 422s), else
// the start of the body. Never the echoed "request_body".
std::string server_detail(const std::string& body) {
  constexpr std::size_t kMaxDetail = 500;
  std::string text;
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    if (auto it = parsed.find("detail"); it != parsed.end()) {
      text = it->is_string()  ? it->get<std::string>()
             : it->is_array() ? validation_list(*it)
                              : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (auto msg = parsed.find("exception_message"); msg != parsed.end()) {
      text = msg->is_string() ? msg->get<std::string>() : msg->dump();
      if (auto d = parsed.find("exception_detail"); d != parsed.end() && d->is_array()) {
        text += ": " + validation_list(*d);
      }
    } else if (auto m = parsed.find("message"); m != parsed.end() && m->is_string()) {
      text = m->get<std::string>();
    }
  }
  if (text.empty()) {
    text = body.substr(0, 200);
  }
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  if (text.size() > kMaxDetail) {
    text = text.substr(0, kMaxDetail) + "...";
  }
  return text;
}

// A fix for credential problems. A 403 can also be a plain refusal (pool
// names starting with "prefect" are reserved) or the server's CSRF check.
// What to change for an answer that retrying cannot fix.
Hint status_hint(long status, const std::string& detail) {
  if (status == 403 && detail.find("CSRF") != std::string::npos) {
    return Hint::kApiCsrf;
  }
  if (status == 401 || (status == 403 && detail.find("reserved") == std::string::npos)) {
    return Hint::kApiAuth;
  }
  return status >= 500 ? Hint::kApiServerError : Hint::kApiAnswer;
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
      random_(std::random_device{}()),
      redacted_base_url_(redact_url_userinfo(options_.base_url)) {
  // What must never appear in a message, even when a server or proxy echoes it.
  constexpr std::size_t kMinSecret = 3;
  auto add = [this](const std::string& secret) {
    if (secret.size() >= kMinSecret) {
      secrets_.push_back(secret);
    }
  };
  add(options_.api_key);
  // The password of a https://user:password@host base URL.
  if (auto scheme = options_.base_url.find("://"); scheme != std::string::npos) {
    const std::string authority =
        options_.base_url.substr(scheme + 3, options_.base_url.find('/', scheme + 3) - scheme - 3);
    if (auto at = authority.rfind('@'); at != std::string::npos) {
      const std::string userinfo = authority.substr(0, at);
      auto colon = userinfo.find(':');
      add(colon == std::string::npos ? userinfo : userinfo.substr(colon + 1));
    }
  }
  add(options_.auth_string);
  if (!options_.auth_string.empty()) {
    add(base64_encode(options_.auth_string));
    if (auto colon = options_.auth_string.find(':'); colon != std::string::npos) {
      add(options_.auth_string.substr(colon + 1));
    }
  }
}

std::string ApiClient::scrub(std::string text) const {
  text = redact_url_userinfo(text);
  for (const auto& secret : secrets_) {
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + kRedacted.size())) {
      text.replace(pos, secret.size(), kRedacted);
    }
  }
  return text;
}

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
  return attempts(method, path, body, options, std::nullopt);
}

const ApiResponse& ApiClient::Result::get() const {
  if (error) {
    std::rethrow_exception(error);
  }
  return *response;
}

std::vector<ApiClient::Result> ApiClient::request_all(const std::vector<Call>& calls,
                                                      const RequestOptions& options) {
  std::vector<HttpRequest> requests;
  requests.reserve(calls.size());
  for (const auto& call : calls) {
    requests.push_back(build(call.method, call.path, call.body));
  }
  std::vector<TransportOutcome> outcomes = transport_.send_all(requests);
  std::vector<Result> results(calls.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    try {
      results[i].response =
          attempts(calls[i].method, calls[i].path, calls[i].body, options, std::move(outcomes[i]));
    } catch (...) {
      results[i].error = std::current_exception();
    }
  }
  return results;
}

ApiResponse ApiClient::attempts(std::string_view method, std::string_view path,
                                const std::optional<nlohmann::json>& body,
                                const RequestOptions& options,
                                std::optional<TransportOutcome> first) {
  const HttpRequest request = build(method, path, body);
  // "GET http://host:4200/api/x", user-info password redacted: the prefix of
  // every log line and message about this call.
  const std::string what =
      scrub(std::string(method) + " " + redacted_base_url_ + std::string(path));
  const std::string short_what = scrub(std::string(method) + " " + std::string(path));
  const std::string unreachable_prefix = "cannot reach Prefect API at " + redacted_base_url_;
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
      HttpResponse response;
      if (first) {
        // Sent already, with the others of its batch.
        TransportOutcome outcome = std::move(*first);
        first.reset();
        if (outcome.error) {
          throw *outcome.error;
        }
        response = std::move(*outcome.response);
      } else {
        response = transport_.send(attempt_request);
      }
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
                                  std::to_string(response.body.size()) + " bytes)",
                              Hint::kApiAnswer);
            }
            result.body = nullptr;
          }
        }
        return result;
      }
      const std::string detail = scrub(server_detail(response.body));
      if (!is_retryable_status(status)) {
        std::string message = what + ": " + std::to_string(status) + " " + reason_phrase(status);
        if (!detail.empty()) {
          message += ": " + detail;
        }
        throw HttpStatusError(message, status_hint(status, detail), status, detail);
      }
      retry_reason = std::to_string(status) + " " + reason_phrase(status);
      if (auto header = response.header("Retry-After")) {
        retry_after = parse_retry_after(*header);
      }
      if (attempt >= max_attempts) {
        throw HttpStatusError(what + ": " + retry_reason + " after " + std::to_string(attempt) +
                                  " attempt(s)" + (detail.empty() ? "" : ": " + detail),
                              Hint::kApiServerError, status, detail);
      }
    } catch (const TransportError& e) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
      const std::string reason = scrub(e.what());
      log_.debug(what + " -> " + reason + " (" + std::to_string(ms.count()) + " ms)");
      if (!e.retryable()) {
        throw api_error(what + ": " + reason, e.tls() ? Hint::kApiTls : Hint::kApiAnswer);
      }
      retry_reason = reason;
      unreachable = true;
      if (attempt >= max_attempts) {
        throw api_error(unreachable_prefix + ": " + reason + " (" + short_what + ", after " +
                            std::to_string(attempt) + " attempt(s))",
                        Hint::kApiUnreachable);
      }
    }

    // Retry-After replaces the computed delay, within the policy's cap.
    auto delay = retry_after ? std::min(*retry_after, policy_.cap)
                             : backoff_delay(policy_, attempt - 1, jitter(random_));
    auto elapsed = std::max(
        waited, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start));
    if (elapsed + delay >= budget) {
      const std::string gave_up = "giving up after " + std::to_string(attempt) + " attempt(s) in " +
                                  format_ms(elapsed) + ", retry budget " + format_ms(budget);
      throw api_error(unreachable ? unreachable_prefix + ": " + retry_reason + " (" + short_what +
                                        ", " + gave_up + ")"
                                  : what + ": " + retry_reason + "; " + gave_up,
                      unreachable ? Hint::kApiUnreachable : Hint::kApiServerError);
    }
    log_.warn(what + ": " + retry_reason + "; retry " + std::to_string(attempt) + " of " +
              std::to_string(max_attempts - 1) + " in " + format_ms(delay));
    waited += delay;
    if (!sleeper_.sleep_for(delay)) {
      throw api_error(what + ": " + retry_reason + "; not retried: stop requested", Hint::kStopped);
    }
  }
}

}  // namespace pc
