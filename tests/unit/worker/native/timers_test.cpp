#include "worker/native/timers.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/fake_clock.hpp"

using namespace pc;
using pc::testing::FakeClock;

TEST_CASE("timers fire once, when due, earliest first", "[worker][timers]") {
  FakeClock clock;
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
  FakeClock clock;
  Timers timers(clock);
  int fired = 0;
  timers.after(std::chrono::milliseconds(0), [&] {
    ++fired;
    timers.after(std::chrono::milliseconds(0), [&] { ++fired; });
  });
  timers.fire_due();
  CHECK(fired == 2);
}
