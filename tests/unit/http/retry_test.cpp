#include "http/retry.hpp"

#include <catch2/catch.hpp>

using namespace pc;
using std::chrono::milliseconds;

TEST_CASE("backoff_delay: 1 s doubling, capped at 60 s, +-10 % jitter", "[http]") {
  RetryPolicy p;
  CHECK(backoff_delay(p, 0, 0.0) == milliseconds(1000));
  CHECK(backoff_delay(p, 1, 0.0) == milliseconds(2000));
  CHECK(backoff_delay(p, 2, 0.0) == milliseconds(4000));
  CHECK(backoff_delay(p, 5, 0.0) == milliseconds(32000));
  CHECK(backoff_delay(p, 6, 0.0) == milliseconds(60000));
  CHECK(backoff_delay(p, 20, 0.0) == milliseconds(60000));
  CHECK(backoff_delay(p, 0, 1.0) == milliseconds(1100));
  CHECK(backoff_delay(p, 0, -1.0) == milliseconds(900));
  CHECK(backoff_delay(p, 6, 1.0) == milliseconds(66000));
  CHECK(backoff_delay(p, 0, 5.0) == milliseconds(1100));  // sample clamped
}

TEST_CASE("parse_retry_after", "[http]") {
  CHECK(parse_retry_after("7") == milliseconds(7000));
  CHECK(parse_retry_after(" 0 ") == milliseconds(0));
  CHECK_FALSE(parse_retry_after("soon"));
  CHECK_FALSE(parse_retry_after(""));
  auto now = std::chrono::system_clock::from_time_t(1445412480);  // 2015-10-21 07:28:00 UTC
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == milliseconds(30000));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == milliseconds(0));
}

TEST_CASE("is_retryable_status: Prefect's client set", "[http]") {
  for (long s : {408L, 429L, 502L, 503L}) {
    CHECK(is_retryable_status(s));
  }
  for (long s : {200L, 400L, 401L, 403L, 404L, 409L, 422L, 500L, 504L}) {
    CHECK_FALSE(is_retryable_status(s));
  }
}

TEST_CASE("InterruptibleSleeper stops early on the flag", "[http]") {
  std::atomic<bool> stop{true};
  InterruptibleSleeper sleeper(&stop);
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(sleeper.sleep_for(milliseconds(5000)));
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(500));
  stop = false;
  CHECK(sleeper.sleep_for(milliseconds(10)));
}
