#pragma once
// Retry policy for Prefect API calls: exponential backoff with jitter, bounded
// in attempts and in total time, honouring Retry-After. Prefect's own client
// retries 408, 429, 502 and 503 (not 500) and connection errors, for every
// method: state proposals stay idempotent through their transition_id.

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

// The program's retry vocabulary. Every retry or back-off is one of three
// kinds, and each call site names its own (a constant beside it):
//  - RetryPolicy (above): a blocking API call retried inside ApiClient on
//    transient answers (408/429/502/503, connection errors), within a budget.
//  - Tries: a few more tries, after any failure, of a call that must not be
//    lost (the pause, a run's final state, the read after a lost claim):
//    slept between by the cycle, timers of its loop in the worker.
//  - FailureStreak: the failures in a row of a recurring call (heartbeat,
//    poll, best-effort updates, the wait's count): when to try again (a
//    growing delay, kept as a timer by the loop, not slept) and when to give
//    up (the count against a limit).
struct Tries {
  int attempts = 3;                       // in all, the first included
  std::chrono::milliseconds first{1000};  // the delay after the first failure
  bool doubling = false;                  // first, 2×, 4× … instead of first, 2×, 3× …
  // The delay after failed attempt `attempt` (1-based).
  std::chrono::milliseconds delay_after(int attempt) const;
  bool last(int attempt) const { return attempt >= attempts; }
};

// The tries of every call that must not be lost (the pause, a run's final
// state, the read after a lost claim): three, 1 s and then 2 s apart. After
// a first stop signal they keep their spacing (Sleeper::sleep_through, the
// worker's timers); a second signal hurries.
inline constexpr Tries kMustNotBeLost{
    .attempts = 3, .first = std::chrono::seconds(1), .doubling = false};

class FailureStreak {
 public:
  // Delays first, then doubling (or growing by `first`) up to `cap`.
  FailureStreak(std::chrono::milliseconds first, std::chrono::milliseconds cap,
                bool doubling = true)
      : first_(first), cap_(cap), doubling_(doubling) {}
  // One more failure; returns how many in a row.
  int failed() { return ++count_; }
  void succeeded() { count_ = 0; }
  int count() const { return count_; }
  // How long to wait before the next try, after count() failures.
  std::chrono::milliseconds delay() const;

 private:
  std::chrono::milliseconds first_;
  std::chrono::milliseconds cap_;
  bool doubling_;
  int count_ = 0;
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

}  // namespace pc
