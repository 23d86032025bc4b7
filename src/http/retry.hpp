#pragma once
// Retry policy for Prefect API calls: exponential backoff with jitter, bounded
// in attempts and in total time, honouring Retry-After. Prefect's own client
// retries 408, 429, 502 and 503 (not 500) and connection errors, for every
// method: state proposals stay idempotent through their transition_id.

#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>

namespace pc {

struct RetryPolicy {
  int max_attempts = 6;                     // first try + 5 retries
  std::chrono::milliseconds initial{1000};  // first retry delay
  double multiplier = 2.0;
  std::chrono::milliseconds cap{60000};         // longest single delay
  double jitter = 0.10;                         // ±10 %
  std::chrono::milliseconds max_total{300000};  // all attempts and delays together
};

// The delay before retry number `retry_index` (0-based), with `jitter_sample`
// in [-1, 1] scaling the jitter: initial × multiplier^i, capped, then ±jitter.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry_index,
                                        double jitter_sample);

// A Retry-After header value: delta seconds or an HTTP date.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// 408, 429, 502, 503.
bool is_retryable_status(long status);

// The sleeping seam. sleep_for returns false when it was cut short because the
// process was asked to stop.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual bool sleep_for(std::chrono::milliseconds duration) = 0;
};

// Sleeps in slices of at most 100 ms, returning false as soon as `*stop` is
// true (a signal handler sets it).
class InterruptibleSleeper final : public Sleeper {
 public:
  explicit InterruptibleSleeper(const std::atomic<bool>* stop) : stop_(stop) {}
  bool sleep_for(std::chrono::milliseconds duration) override;

 private:
  const std::atomic<bool>* stop_;
};

}  // namespace pc
