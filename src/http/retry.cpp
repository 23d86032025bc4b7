#include "http/retry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <string>

#include "common/text.hpp"

namespace pc {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry_index,
                                        double jitter_sample) {
  double base = static_cast<double>(policy.initial.count()) *
                std::pow(policy.multiplier, std::max(0, retry_index));
  base = std::min(base, static_cast<double>(policy.cap.count()));
  double sample = std::clamp(jitter_sample, -1.0, 1.0);
  double jittered = base * (1.0 + policy.jitter * sample);
  return std::chrono::milliseconds(static_cast<long long>(std::llround(std::max(0.0, jittered))));
}

std::chrono::milliseconds Tries::delay_after(int attempt) const {
  const int n = std::max(1, attempt);
  return doubling ? first * (std::int64_t{1} << std::min(n - 1, 30)) : first * n;
}

std::chrono::milliseconds FailureStreak::delay() const {
  if (count_ == 0) {
    return std::chrono::milliseconds(0);
  }
  const auto grown =
      doubling_ ? first_ * (std::int64_t{1} << std::min(count_ - 1, 30)) : first_ * count_;
  return std::min(grown, cap_);
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  const std::string v = trim(value);
  if (v.empty()) {
    return std::nullopt;
  }
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) {
      return std::nullopt;
    }
    return std::chrono::milliseconds(std::stoll(v) * 1000);
  }
  // IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT"
  std::tm tm{};
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  return std::max(delta, std::chrono::milliseconds(0));
}

bool is_retryable_status(long status) {
  return status == 408 || status == 429 || status == 502 || status == 503;
}

}  // namespace pc
