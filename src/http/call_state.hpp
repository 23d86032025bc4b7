#pragma once
// Internal to ApiClient (api_client.cpp, api_client_started.cpp): one call's
// attempts, shared by the blocking calls, the rounds and the started calls,
// so that a call fails the same way whichever way it was sent.

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "common/redact.hpp"
#include "common/url.hpp"
#include "http/api_client.hpp"
#include "http/error_answer.hpp"

namespace pc {
namespace api_detail {

using TimePoint = std::chrono::steady_clock::time_point;

// A server too busy to answer now (Prefect on SQLite: "database is locked").
inline bool busy_answer(const TransportOutcome& outcome) {
  return outcome.response && (outcome.response->status == 503 || outcome.response->status == 429);
}

inline std::string format_ms(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

}  // namespace api_detail

// One call's attempts: the request, the budget, and what each outcome means.
// request() and request_all() drive it; it never sends or sleeps itself.
class ApiClient::Call::State {
  using TimePoint = api_detail::TimePoint;

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
                                  " attempt(s) in " + api_detail::format_ms(elapsed) +
                                  ", retry budget " + api_detail::format_ms(budget_);
      throw api_error(unreachable_ ? unreachable_prefix() + ": " + retry_reason_ + " (" +
                                         short_what_ + ", " + gave_up + ")"
                                   : what_ + ": " + retry_reason_ + "; " + gave_up,
                      unreachable_ ? Hint::kApiUnreachable : Hint::kApiServerError);
    }
    client_.log_.warn(what_ + ": " + retry_reason_ + "; retry " + std::to_string(attempt_) +
                      " of " + std::to_string(max_attempts_ - 1) + " in " +
                      api_detail::format_ms(delay_));
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

}  // namespace pc
