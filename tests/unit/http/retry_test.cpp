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

TEST_CASE("kMustNotBeLost: three tries, 1 s and then 2 s apart", "[http]") {
  CHECK(kMustNotBeLost.attempts == 3);
  CHECK(kMustNotBeLost.delay_after(1) == milliseconds(1000));
  CHECK(kMustNotBeLost.delay_after(2) == milliseconds(2000));
  CHECK_FALSE(kMustNotBeLost.last(2));
  CHECK(kMustNotBeLost.last(3));
}

TEST_CASE("is_retryable_status: Prefect's client set", "[http]") {
  for (long s : {408L, 429L, 502L, 503L}) {
    CHECK(is_retryable_status(s));
  }
  for (long s : {200L, 400L, 401L, 403L, 404L, 409L, 422L, 500L, 504L}) {
    CHECK_FALSE(is_retryable_status(s));
  }
}

TEST_CASE("backoff_delay: the default schedule at the jitter extremes", "[http]") {
  RetryPolicy p;
  const long expected_low[] = {900, 1800, 3600, 7200, 14400, 28800, 54000};
  const long expected_high[] = {1100, 2200, 4400, 8800, 17600, 35200, 66000};
  for (int i = 0; i < 7; ++i) {
    CHECK(backoff_delay(p, i, -1.0).count() == expected_low[i]);
    CHECK(backoff_delay(p, i, 1.0).count() == expected_high[i]);
  }
  RetryPolicy custom;
  custom.initial = milliseconds(250);
  custom.multiplier = 3.0;
  custom.cap = milliseconds(5000);
  custom.jitter = 0.0;
  CHECK(backoff_delay(custom, 0, 1.0) == milliseconds(250));
  CHECK(backoff_delay(custom, 2, -1.0) == milliseconds(2250));
  CHECK(backoff_delay(custom, 3, 0.0) == milliseconds(5000));
  CHECK(backoff_delay(custom, -1, 0.0) == milliseconds(250));  // negative index = first
}

TEST_CASE("parse_retry_after rejects what is not seconds or an IMF date", "[http]") {
  CHECK_FALSE(parse_retry_after("-5"));
  CHECK_FALSE(parse_retry_after("1.5"));
  CHECK_FALSE(parse_retry_after("99999999999999"));
  CHECK_FALSE(parse_retry_after("2015-10-21T07:28:00Z"));
  CHECK(parse_retry_after("120") == milliseconds(120000));
}

TEST_CASE("Tries: linear or doubling delays between a few tries", "[retry]") {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const Tries linear{3, seconds(1), false};
  CHECK(linear.delay_after(1) == seconds(1));
  CHECK(linear.delay_after(2) == seconds(2));
  CHECK_FALSE(linear.last(2));
  CHECK(linear.last(3));
  const Tries doubling{4, milliseconds(500), true};
  CHECK(doubling.delay_after(1) == milliseconds(500));
  CHECK(doubling.delay_after(2) == milliseconds(1000));
  CHECK(doubling.delay_after(3) == milliseconds(2000));
}

TEST_CASE("FailureStreak: counts failures in a row, grows the delay to its cap, resets",
          "[retry]") {
  using std::chrono::seconds;
  FailureStreak streak(seconds(1), seconds(5));
  CHECK(streak.delay() == seconds(0));
  CHECK(streak.failed() == 1);
  CHECK(streak.delay() == seconds(1));
  CHECK(streak.failed() == 2);
  CHECK(streak.delay() == seconds(2));
  streak.failed();
  CHECK(streak.delay() == seconds(4));
  streak.failed();
  CHECK(streak.delay() == seconds(5));  // capped
  for (int i = 0; i < 40; ++i) {
    streak.failed();  // no overflow however long the streak
  }
  CHECK(streak.delay() == seconds(5));
  streak.succeeded();
  CHECK(streak.count() == 0);
  CHECK(streak.delay() == seconds(0));

  FailureStreak linear(seconds(1), seconds(2), false);
  linear.failed();
  CHECK(linear.delay() == seconds(1));
  linear.failed();
  CHECK(linear.delay() == seconds(2));
  linear.failed();
  CHECK(linear.delay() == seconds(2));
}
