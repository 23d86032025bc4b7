#pragma once
// The monotonic-clock seam: code that measures deadlines asks a Clock, so a
// test can move time without sleeping (a fake Clock next to a fake Sleeper).

#include <chrono>

namespace pc {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
};

// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace pc
