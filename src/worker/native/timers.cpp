#include "worker/native/timers.hpp"

#include <utility>

namespace pc {

void Timers::after(std::chrono::milliseconds delay, std::function<void()> fire) {
  due_.emplace(clock_.now() + delay, std::move(fire));
}

void Timers::fire_due() {
  const auto now = clock_.now();
  while (!due_.empty() && due_.begin()->first <= now) {
    auto timer = due_.extract(due_.begin());
    timer.mapped()();
  }
}

}  // namespace pc
