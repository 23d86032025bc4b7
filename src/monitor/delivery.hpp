#pragma once
// Bounded delivery of one monitoring request (a dead-man's-switch ping, a
// Pushgateway push). Monitoring must never hold up or change the cycle: each
// attempt has a short timeout, a failed attempt is retried twice after short
// delays, and no attempt starts once the request's budget is spent. The bound
// on one request is therefore kMonitorRequestBudget (3 s), whatever the
// endpoint does (hangs, refuses, answers 500). Never throws for network
// failures: the caller logs the result, as a warning at worst.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"

namespace pc {

// One attempt, connect and whole exchange together.
inline constexpr std::chrono::milliseconds kMonitorAttemptTimeout{2000};
// The pauses before the second and the third attempt.
inline constexpr std::chrono::milliseconds kMonitorFirstRetryDelay{250};
inline constexpr std::chrono::milliseconds kMonitorSecondRetryDelay{500};
// Every attempt and pause of one request together.
inline constexpr std::chrono::milliseconds kMonitorRequestBudget{3000};
// An attempt is not started with less time than this left.
inline constexpr std::chrono::milliseconds kMonitorMinAttempt{100};

struct DeliveryBounds {
  std::chrono::milliseconds attempt_timeout = kMonitorAttemptTimeout;
  std::vector<std::chrono::milliseconds> retry_delays{kMonitorFirstRetryDelay,
                                                      kMonitorSecondRetryDelay};
  std::chrono::milliseconds budget = kMonitorRequestBudget;
};

struct DeliveryResult {
  bool delivered = false;  // a 2xx answer
  int attempts = 0;
  long status = 0;    // the last HTTP status; 0 = no answer
  std::string error;  // why it was not delivered (the last attempt)
  // One entry per attempt, "HTTP 200 (12 ms)" or "<transport error> (2001 ms)",
  // for the caller's METHOD url -> outcome debug lines.
  std::vector<std::string> attempt_outcomes;
  std::chrono::milliseconds elapsed{0};
};

// 5xx, 408 and 429: another attempt may succeed. Other 4xx (a wrong URL, an
// unknown check, bad credentials) will not.
bool is_retryable_monitor_status(long status);

// Sends `request` until an answer that is 2xx or not retryable, or until the
// bounds are spent. The time limit is the earlier of now + bounds.budget and
// `deadline` (a budget shared by several requests); each attempt's timeout is
// min(bounds.attempt_timeout, the time left).
DeliveryResult deliver_bounded(
    HttpTransport& transport, Sleeper& sleeper, const Clock& clock, HttpRequest request,
    const DeliveryBounds& bounds = DeliveryBounds{},
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

}  // namespace pc
