#include "http/api_client.hpp"

#include <algorithm>

#include "common/redact.hpp"
#include "common/url.hpp"
#include "http/call_state.hpp"
#include "http/error_answer.hpp"

namespace pc {
using api_detail::busy_answer;

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
                     Sleeper& sleeper, const Clock& clock)
    : transport_(transport),
      options_(std::move(options)),
      log_(std::move(log)),
      policy_(policy),
      sleeper_(sleeper),
      clock_(clock),
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
  if (auto userinfo = userinfo_of(options_.base_url)) {
    add(userinfo->password.value_or(userinfo->user));
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
  Call::State state(*this, Call{std::string(method), std::string(path), body}, options);
  while (true) {
    HttpRequest request = state.next_request();
    TransportOutcome outcome;
    try {
      outcome.response = transport_.send(request);
    } catch (const TransportError& e) {
      outcome.error = e;
    }
    if (auto response = state.judge(std::move(outcome))) {
      return std::move(*response);
    }
    state.waited(state.delay(), state.sleep(sleeper_, state.delay()));
  }
}

const ApiResponse& ApiClient::Result::get() const {
  if (error) {
    std::rethrow_exception(error);
  }
  return *response;
}

std::vector<ApiClient::Result> ApiClient::request_all(const std::vector<Call>& calls,
                                                      const RequestOptions& options) {
  std::vector<Result> results(calls.size());
  std::vector<std::unique_ptr<Call::State>> states;
  std::vector<std::size_t> pending;  // the calls to send in this round
  for (std::size_t i = 0; i < calls.size(); ++i) {
    try {
      states.push_back(std::make_unique<Call::State>(*this, calls[i], options));
      pending.push_back(i);
    } catch (...) {
      states.push_back(nullptr);
      results[i].error = std::current_exception();
    }
  }
  // Rounds: the pending calls go out together; those to be tried again wait
  // for the longest of their delays, once, and go out together again.
  while (!pending.empty()) {
    std::vector<HttpRequest> requests;
    requests.reserve(pending.size());
    for (std::size_t i : pending) {
      requests.push_back(states[i]->next_request());
    }
    std::vector<TransportOutcome> outcomes = one_at_a_time_ && !options.takes_no_lock
                                                 ? transport_.HttpTransport::send_all(requests)
                                                 : transport_.send_all(requests);
    if (requests.size() > 1 && std::any_of(outcomes.begin(), outcomes.end(), busy_answer)) {
      answered_busy();
    }
    std::vector<std::size_t> again;
    std::chrono::milliseconds delay{0};
    for (std::size_t k = 0; k < pending.size(); ++k) {
      const std::size_t i = pending[k];
      try {
        results[i].response = states[i]->judge(std::move(outcomes[k]));
        if (!results[i].response) {
          again.push_back(i);
          delay = std::max(delay, states[i]->delay());
        }
      } catch (...) {
        results[i].error = std::current_exception();
      }
    }
    if (!again.empty()) {
      // One sleep for the round: through a stop when a call must not be lost.
      const bool completed =
          options.through_stop ? sleeper_.sleep_through(delay) : sleeper_.sleep_for(delay);
      for (std::size_t i : again) {
        try {
          states[i]->waited(delay, completed);
        } catch (...) {
          results[i].error = std::current_exception();
        }
      }
      if (!completed) {
        again.clear();
      }
    }
    pending = std::move(again);
  }
  return results;
}

ApiClient::~ApiClient() = default;

}  // namespace pc
