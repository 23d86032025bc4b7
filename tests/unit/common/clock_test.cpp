#include "common/clock.hpp"

#include <catch2/catch.hpp>

#include "common/fake_clock.hpp"

using namespace pc;
using std::chrono::milliseconds;

namespace {

bool returned_early(const std::function<bool()>& sleep) {
  const auto start = std::chrono::steady_clock::now();
  const bool completed = sleep();
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(2000));
  return !completed;
}

}  // namespace

TEST_CASE("InterruptibleSleeper: sleep_for ends at a stop, sleep_through only at a hurry",
          "[common]") {
  std::atomic<bool> stop{false};
  std::atomic<bool> hurry{false};
  InterruptibleSleeper sleeper(&stop, &hurry);
  CHECK(sleeper.sleep_for(milliseconds(10)));
  CHECK(sleeper.sleep_through(milliseconds(10)));

  stop = true;  // the first signal
  CHECK(returned_early([&] { return sleeper.sleep_for(milliseconds(5000)); }));
  const auto start = std::chrono::steady_clock::now();
  CHECK(sleeper.sleep_through(milliseconds(150)));  // slept whole
  CHECK(std::chrono::steady_clock::now() - start >= milliseconds(140));

  hurry = true;  // the second
  CHECK(returned_early([&] { return sleeper.sleep_through(milliseconds(5000)); }));
  CHECK(returned_early([&] { return sleeper.sleep_for(milliseconds(5000)); }));
}

TEST_CASE("InterruptibleSleeper without flags sleeps whole", "[common]") {
  InterruptibleSleeper sleeper(nullptr);
  CHECK(sleeper.sleep_for(milliseconds(5)));
  CHECK(sleeper.sleep_through(milliseconds(5)));
}

TEST_CASE("FakeClock: the steady and the wall clock move together", "[common]") {
  pc::testing::FakeClock clock;
  const auto wall = clock.wall_now();
  const auto steady = clock.now();
  pc::testing::ClockedSleeper sleeper(clock);
  CHECK(sleeper.sleep_for(milliseconds(1500)));
  CHECK(clock.now() - steady == milliseconds(1500));
  CHECK(clock.wall_now() - wall == milliseconds(1500));
  CHECK(clock.elapsed() == milliseconds(1500));

  // A stop ends sleep_for at once, not sleep_through; a hurry ends both.
  sleeper.stopped = [] { return true; };
  CHECK_FALSE(sleeper.sleep_for(milliseconds(1000)));
  CHECK(clock.elapsed() == milliseconds(1500));
  CHECK(sleeper.sleep_through(milliseconds(1000)));
  CHECK(clock.elapsed() == milliseconds(2500));
  sleeper.hurried = [] { return true; };
  CHECK_FALSE(sleeper.sleep_through(milliseconds(1000)));
  CHECK(clock.elapsed() == milliseconds(2500));
  CHECK(sleeper.slept == std::vector<milliseconds>{milliseconds(1500), milliseconds(1000),
                                                   milliseconds(1000), milliseconds(1000)});
}
