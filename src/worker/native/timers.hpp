#pragma once
// The native worker's timers: work due later (a retry's next try, a WAIT's
// delay) that the loop runs from its next round after the delay, so that no
// run's delay stalls the others. Nothing here sleeps.

#include <chrono>
#include <functional>
#include <map>

#include "common/clock.hpp"

namespace pc {

class Timers {
 public:
  // `clock` must outlive this.
  explicit Timers(const Clock& clock) : clock_(clock) {}

  // `fire` runs from the first fire_due() at or after now + `delay`.
  void after(std::chrono::milliseconds delay, std::function<void()> fire);
  // Runs the timers that are due, earliest first (one may add another).
  void fire_due();
  const Clock& clock() const { return clock_; }

 private:
  const Clock& clock_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> due_;
};

}  // namespace pc
