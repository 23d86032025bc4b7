#pragma once
// The time seam: every deadline, timestamp and sleep of the program asks a
// Clock or a Sleeper, so that a test moves time without sleeping
// (tests/unit/common/fake_clock.hpp: a FakeClock and a Sleeper that advances
// it).
//
//   Clock::now()             the steady clock: deadlines and durations
//   Clock::wall_now()        the calendar: compared with the server's times
//   Sleeper::sleep_for()     a wait that the first stop signal cuts short
//   Sleeper::sleep_through() a wait that the first stop signal does not cut
//                            short, only a second one (the user hurries):
//                            the spacing of the calls that must not be lost
//                            after a stop (the pause, a stopped run's
//                            CRASHED), within the time the platform allows

#include <atomic>
#include <chrono>

namespace pc {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
};

// std::chrono::steady_clock and std::chrono::system_clock.
class SteadyClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::now();
  }
};

// The process's one SteadyClock.
const Clock& real_clock();

class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Sleeps `duration`; false when cut short because the process was asked
  // to stop (at once when it already was).
  virtual bool sleep_for(std::chrono::milliseconds duration) = 0;
  // Sleeps `duration` even once asked to stop; false when cut short because
  // the process was asked to hurry (a second stop signal).
  virtual bool sleep_through(std::chrono::milliseconds duration) = 0;
};

// Sleeps in slices of at most 100 ms, watching `*stop` (sleep_for) and
// `*hurry` (both), which a signal handler sets (cycle/signals.hpp); either may
// be null: never set.
class InterruptibleSleeper final : public Sleeper {
 public:
  explicit InterruptibleSleeper(const std::atomic<bool>* stop,
                                const std::atomic<bool>* hurry = nullptr)
      : stop_(stop), hurry_(hurry) {}
  bool sleep_for(std::chrono::milliseconds duration) override;
  bool sleep_through(std::chrono::milliseconds duration) override;

 private:
  // Sleeps until `duration` has passed or `*flag` is set; false when it is.
  static bool sleep_unless(const std::atomic<bool>* flag, std::chrono::milliseconds duration);

  const std::atomic<bool>* stop_;
  const std::atomic<bool>* hurry_;
};

}  // namespace pc
