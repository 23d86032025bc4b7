#include "http/api_client.hpp"

#include <algorithm>

#include "common/redact.hpp"
#include "common/url.hpp"
#include "http/error_answer.hpp"

namespace pc {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

// A server too busy to answer now (Prefect on SQLite: "database is locked").
bool busy_answer(const TransportOutcome& outcome) {
  return outcome.response && (outcome.response->status == 503 || outcome.response->status == 429);
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

// One call's attempts: the request, the budget, and what each outcome means.
// request() and request_all() drive it; it never sends or sleeps itself.
class ApiClient::Call::State {
 public:
  State(ApiClient& client, const Call& call, const RequestOptions& options)
      : client_(client),
        request_(client.build(call.method, call.path, call.body)),
        // "GET http://host:4200/api/x", user-info password redacted: the
        // prefix of every log line and message about this call.
        what_(client.scrub(call.method + " " + client.redacted_base_url_ + call.path)),
        short_what_(client.scrub(call.method + " " + call.path)),
        start_(client.clock_.now()),
        budget_(options.deadline.value_or(client.policy_.max_total)),
        max_attempts_(options.retry ? std::max(1, client.policy_.max_attempts) : 1),
        through_stop_(options.through_stop) {}

  // The next attempt's request: never past the call's deadline.
  HttpRequest next_request() {
    ++attempt_;
    ++client_.attempts_;
    HttpRequest r = request_;
    auto left = budget_ - since(start_);
    r.timeout = std::max(std::chrono::milliseconds(100), std::min(request_.timeout, left));
    sent_ = client_.clock_.now();
    return r;
  }

  // The outcome of the attempt: the response when it is final; nullopt when
  // the call is to be tried again after delay(). Throws when it failed.
  std::optional<ApiResponse> judge(TransportOutcome outcome) {
    retry_after_.reset();
    if (outcome.error) {
      const std::string reason = client_.scrub(outcome.error->what());
      client_.log_.debug(what_ + " -> " + reason + " (" + std::to_string(since(sent_).count()) +
                         " ms)");
      if (!outcome.error->retryable()) {
        throw api_error(what_ + ": " + reason,
                        outcome.error->tls() ? Hint::kApiTls : Hint::kApiAnswer);
      }
      retry_reason_ = reason;
      unreachable_ = true;
      if (attempt_ >= max_attempts_) {
        throw api_error(unreachable_prefix() + ": " + reason + " (" + short_what_ + ", after " +
                            std::to_string(attempt_) + " attempt(s))",
                        Hint::kApiUnreachable);
      }
      return plan_retry();
    }
    const HttpResponse& response = *outcome.response;
    client_.log_.debug(what_ + " -> " + std::to_string(response.status) + " (" +
                       std::to_string(since(sent_).count()) + " ms)");
    const long status = response.status;
    if ((status >= 200 && status < 300) || status == 404 || status == 409) {
      ApiResponse result;
      result.status = status;
      if (!response.body.empty()) {
        result.body = nlohmann::json::parse(response.body, nullptr, false);
        if (result.body.is_discarded()) {
          if (status >= 200 && status < 300) {
            throw api_error(what_ + ": malformed JSON in the response (" +
                                std::to_string(response.body.size()) + " bytes)",
                            Hint::kApiAnswer);
          }
          result.body = nullptr;
        }
      }
      return result;
    }
    const std::string detail = client_.scrub(server_detail(response.body));
    if (!is_retryable_status(status)) {
      std::string message = what_ + ": " + std::to_string(status) + " " + reason_phrase(status);
      if (!detail.empty()) {
        message += ": " + detail;
      }
      throw HttpStatusError(message, status_hint(status, detail), status, detail);
    }
    retry_reason_ = std::to_string(status) + " " + reason_phrase(status);
    unreachable_ = false;
    if (auto header = response.header("Retry-After")) {
      retry_after_ = parse_retry_after(*header);
    }
    if (attempt_ >= max_attempts_) {
      throw HttpStatusError(what_ + ": " + retry_reason_ + " after " + std::to_string(attempt_) +
                                " attempt(s)" + (detail.empty() ? "" : ": " + detail),
                            Hint::kApiServerError, status, detail);
    }
    return plan_retry();
  }

  // The wait before the next attempt, decided by judge().
  std::chrono::milliseconds delay() const { return delay_; }
  // Attempts made so far (0: not sent yet).
  int attempts() const { return attempt_; }

  // Sleeps the delay before the next attempt with `sleeper`: through a
  // first stop signal when the call must not be lost.
  bool sleep(Sleeper& sleeper, std::chrono::milliseconds delay) const {
    return through_stop_ ? sleeper.sleep_through(delay) : sleeper.sleep_for(delay);
  }

  // Records that `slept` passed before the next attempt; throws when the
  // sleep was cut short by a stop signal.
  void waited(std::chrono::milliseconds slept, bool completed) {
    waited_ += slept;
    if (!completed) {
      throw api_error(
          what_ + ": " + retry_reason_ + "; not retried: " +
              (through_stop_ ? "a second stop signal asked to hurry" : "a stop signal arrived"),
          Hint::kStopped);
    }
  }

 private:
  std::string unreachable_prefix() const {
    return "cannot reach Prefect API at " + client_.redacted_base_url_;
  }

  std::optional<ApiResponse> plan_retry() {
    const RetryPolicy& policy = client_.policy_;
    std::uniform_real_distribution<double> jitter(-1.0, 1.0);
    // Retry-After replaces the computed delay, within the policy's cap.
    delay_ = retry_after_ ? std::min(*retry_after_, policy.cap)
                          : backoff_delay(policy, attempt_ - 1, jitter(client_.random_));
    auto elapsed = std::max(waited_, since(start_));
    if (elapsed + delay_ >= budget_) {
      const std::string gave_up = "giving up after " + std::to_string(attempt_) +
                                  " attempt(s) in " + format_ms(elapsed) + ", retry budget " +
                                  format_ms(budget_);
      throw api_error(unreachable_ ? unreachable_prefix() + ": " + retry_reason_ + " (" +
                                         short_what_ + ", " + gave_up + ")"
                                   : what_ + ": " + retry_reason_ + "; " + gave_up,
                      unreachable_ ? Hint::kApiUnreachable : Hint::kApiServerError);
    }
    client_.log_.warn(what_ + ": " + retry_reason_ + "; retry " + std::to_string(attempt_) +
                      " of " + std::to_string(max_attempts_ - 1) + " in " + format_ms(delay_));
    return std::nullopt;
  }

  std::chrono::milliseconds since(TimePoint t) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(client_.clock_.now() - t);
  }

  ApiClient& client_;
  const HttpRequest request_;
  const std::string what_;
  const std::string short_what_;
  const TimePoint start_;
  const std::chrono::milliseconds budget_;
  const int max_attempts_;
  const bool through_stop_;
  int attempt_ = 0;
  TimePoint sent_;
  std::string retry_reason_;
  bool unreachable_ = false;
  std::optional<std::chrono::milliseconds> retry_after_;
  std::chrono::milliseconds delay_{0};
  std::chrono::milliseconds waited_{0};  // the delays slept so far
};

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
    std::vector<TransportOutcome> outcomes = one_at_a_time_
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

ApiClient::CallId ApiClient::start(const Call& call, const RequestOptions& options) {
  const CallId id = next_call_++;
  Started entry{std::make_unique<Call::State>(*this, call, options)};
  entry.retry_at = clock_.now();
  started_.emplace(id, std::move(entry));
  send_due();
  return id;
}

std::chrono::milliseconds ApiClient::send_due() {
  auto next = std::chrono::milliseconds::max();
  const auto now = clock_.now();
  bool in_flight = std::any_of(started_.begin(), started_.end(),
                               [](const auto& e) { return e.second.ticket != 0; });
  for (auto& [id, entry] : started_) {
    if (entry.ticket != 0) {
      continue;
    }
    if (entry.retry_at > now) {
      next = std::min(next,
                      std::chrono::duration_cast<std::chrono::milliseconds>(entry.retry_at - now));
      continue;
    }
    if (one_at_a_time_ && in_flight) {
      continue;  // its turn comes when the one in flight has ended
    }
    if (entry.state->attempts() > 0) {
      entry.state->waited(entry.state->delay(), true);  // a retry: its delay has passed
    }
    try {
      entry.ticket = transport_.start(entry.state->next_request());
      in_flight = true;
    } catch (const TransportError& e) {
      // Not on its way (libcurl could not take it): the attempt's outcome,
      // judged by the next poll() as any other, so the call still ends
      // there, and its owner hears of it.
      entry.retry_at = TimePoint::max();
      not_started_.emplace_back(id, TransportOutcome{std::nullopt, e});
    }
  }
  return next;
}

std::vector<std::pair<ApiClient::CallId, ApiClient::Result>> ApiClient::poll(
    std::chrono::milliseconds wait) {
  std::vector<std::pair<CallId, Result>> ended;
  // Retries whose delay has passed go out again (and, one at a time, calls
  // waiting their turn); the wait ends no later than the next one due.
  wait = std::min(wait, send_due());
  for (auto& [id, outcome] : std::exchange(not_started_, {})) {
    judge_started(id, std::move(outcome), false, ended);
  }
  if (!ended.empty()) {
    wait = std::chrono::milliseconds(0);
  }
  const auto sent_together = std::count_if(started_.begin(), started_.end(),
                                           [](const auto& e) { return e.second.ticket != 0; });
  for (auto& [ticket, outcome] : transport_.poll(wait)) {
    auto it = std::find_if(started_.begin(), started_.end(),
                           [ticket = ticket](const auto& e) { return e.second.ticket == ticket; });
    if (it == started_.end()) {
      continue;  // not ours (cannot happen: one client per transport)
    }
    judge_started(it->first, std::move(outcome), sent_together > 1, ended);
  }
  send_due();  // the turn of a call waiting for one that ended
  return ended;
}

void ApiClient::judge_started(CallId id, TransportOutcome outcome, bool sent_together,
                              std::vector<std::pair<CallId, Result>>& ended) {
  auto it = started_.find(id);
  if (sent_together && busy_answer(outcome)) {
    answered_busy();
  }
  Result result;
  try {
    result.response = it->second.state->judge(std::move(outcome));
  } catch (...) {
    result.error = std::current_exception();
  }
  if (result.response || result.error) {
    ended.emplace_back(id, std::move(result));
    started_.erase(it);
  } else {
    it->second.ticket = 0;  // to be tried again after its delay
    it->second.retry_at = clock_.now() + it->second.state->delay();
  }
}

void ApiClient::answered_busy() {
  if (one_at_a_time_) {
    return;
  }
  // Prefect's server on SQLite answers concurrent writes with 503
  // "database is locked" at once: requests in flight together only make
  // retries. From here on this client sends them one after another.
  one_at_a_time_ = true;
  log_.info(
      "the Prefect API answered 503/429 to requests sent together (a server on SQLite?): "
      "sending them one after another from now on");
}

}  // namespace pc
