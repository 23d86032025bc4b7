#include "common/clock.hpp"

#include <algorithm>
#include <thread>

namespace pc {

const Clock& real_clock() {
  static const SteadyClock clock;
  return clock;
}

bool InterruptibleSleeper::sleep_unless(const std::atomic<bool>* flag,
                                        std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (true) {
    if (flag != nullptr && flag->load()) {
      return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return true;
    }
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
  }
}

bool InterruptibleSleeper::sleep_for(std::chrono::milliseconds duration) {
  // A hurry comes with a stop: one flag is enough, but either may be given.
  return sleep_unless(stop_, duration) && (hurry_ == nullptr || !hurry_->load());
}

bool InterruptibleSleeper::sleep_through(std::chrono::milliseconds duration) {
  return sleep_unless(hurry_, duration);
}

}  // namespace pc
