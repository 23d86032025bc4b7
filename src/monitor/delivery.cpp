#include "monitor/delivery.hpp"

#include <algorithm>

namespace pc {
namespace {

// ": <the first 200 bytes of the answer, on one line>", or "" for no answer.
std::string answer_excerpt(const std::string& body) {
  constexpr std::size_t kMax = 200;
  std::string text = body.substr(0, kMax);
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text.empty() ? "" : ": " + text + (body.size() > kMax ? "..." : "");
}

}  // namespace

bool is_retryable_monitor_status(long status) {
  return status >= 500 || status == 408 || status == 429;
}

DeliveryResult deliver_bounded(HttpTransport& transport, Sleeper& sleeper, const Clock& clock,
                               HttpRequest request, const DeliveryBounds& bounds,
                               std::optional<std::chrono::steady_clock::time_point> deadline) {
  using std::chrono::milliseconds;
  const auto start = clock.now();
  auto limit = start + bounds.budget;
  if (deadline && *deadline < limit) {
    limit = *deadline;
  }
  auto left = [&] { return std::chrono::duration_cast<milliseconds>(limit - clock.now()); };

  DeliveryResult result;
  const std::size_t max_attempts = bounds.retry_delays.size() + 1;
  for (std::size_t attempt = 0; attempt < max_attempts; ++attempt) {
    if (attempt > 0) {
      // Pausing longer than the budget allows would only end in no attempt.
      const auto pause = std::min(bounds.retry_delays[attempt - 1], left() - kMonitorMinAttempt);
      if (pause.count() < 0) {
        break;
      }
      sleeper.sleep_for(pause);
    }
    const auto remaining = left();
    if (remaining < kMonitorMinAttempt) {
      if (result.attempts == 0) {
        result.error = "no time left to send it";
      }
      break;
    }
    request.timeout = std::min(bounds.attempt_timeout, remaining);
    ++result.attempts;
    const auto attempt_start = clock.now();
    auto took = [&] {
      return " (" +
             std::to_string(
                 std::chrono::duration_cast<milliseconds>(clock.now() - attempt_start).count()) +
             " ms)";
    };
    try {
      HttpResponse response = transport.send(request);
      result.status = response.status;
      result.attempt_outcomes.push_back("HTTP " + std::to_string(response.status) + took());
      if (response.status >= 200 && response.status < 300) {
        result.delivered = true;
        result.error.clear();
        break;
      }
      result.error = "HTTP " + std::to_string(response.status) + answer_excerpt(response.body);
      if (!is_retryable_monitor_status(response.status)) {
        break;
      }
    } catch (const TransportError& e) {
      result.status = 0;
      result.error = e.what();
      result.attempt_outcomes.push_back(result.error + took());
      if (!e.retryable()) {
        break;
      }
    }
  }
  result.elapsed = std::chrono::duration_cast<milliseconds>(clock.now() - start);
  return result;
}

}  // namespace pc
