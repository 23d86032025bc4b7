#include "worker/native/timers.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace pc;

namespace {

class StillClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
};

}  // namespace

TEST_CASE("timers fire once, when due, earliest first", "[worker][timers]") {
  StillClock clock;
  Timers timers(clock);
  std::vector<std::string> fired;
  timers.after(std::chrono::seconds(2), [&] { fired.push_back("2 s"); });
  timers.after(std::chrono::seconds(1), [&] { fired.push_back("1 s"); });

  timers.fire_due();
  CHECK(fired.empty());

  clock.advance(std::chrono::seconds(1));
  timers.fire_due();
  CHECK(fired == std::vector<std::string>{"1 s"});

  clock.advance(std::chrono::seconds(5));
  timers.fire_due();
  timers.fire_due();
  CHECK(fired == std::vector<std::string>{"1 s", "2 s"});
}

TEST_CASE("a timer that is due may add one due at once", "[worker][timers]") {
  StillClock clock;
  Timers timers(clock);
  int fired = 0;
  timers.after(std::chrono::milliseconds(0), [&] {
    ++fired;
    timers.after(std::chrono::milliseconds(0), [&] { ++fired; });
  });
  timers.fire_due();
  CHECK(fired == 2);
}
