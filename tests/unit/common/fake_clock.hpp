#pragma once
// Time without sleeping, for every unit test (common/clock.hpp): a FakeClock,
// a Sleeper that advances it, and a transport that advances it as a real one
// would (a scripted timeout costs the request's whole timeout, any other
// answer 10 ms).
//
//   FakeClock clock;
//   ClockedSleeper sleeper(clock);
//   sleeper.on_sleep = [&](auto) { if (clock.elapsed() > 5s) signals = 1; };
//   sleeper.stopped = [&] { return signals > 0; };

#include <functional>
#include <vector>

#include "common/clock.hpp"
#include "http/fake_transport.hpp"

namespace pc::testing {

class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  std::chrono::system_clock::time_point wall_now() const override {
    return wall_start_ + elapsed();
  }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_);
  }

 private:
  std::chrono::steady_clock::time_point start_{std::chrono::seconds(1000)};
  std::chrono::steady_clock::time_point now_ = start_;
  // The real time when the clock was made: the server's timestamps in a
  // test's answers are written from the real clock.
  std::chrono::system_clock::time_point wall_start_ = std::chrono::system_clock::now();
};

// Sleeps by advancing the clock. `slept` records every duration asked for.
// sleep_for returns false at once while `stopped()` (a first stop signal),
// sleep_through while `hurried()` (a second); `on_sleep` runs first, with
// the duration: a test delivers its signals there.
class ClockedSleeper : public Sleeper {
 public:
  explicit ClockedSleeper(FakeClock& clock) : clock_(clock) {}
  bool sleep_for(std::chrono::milliseconds d) override {
    return sleep(d, stopped) && !(hurried && hurried());
  }
  bool sleep_through(std::chrono::milliseconds d) override { return sleep(d, hurried); }

  std::vector<std::chrono::milliseconds> slept;
  std::function<void(std::chrono::milliseconds)> on_sleep;
  std::function<bool()> stopped;
  std::function<bool()> hurried;

 private:
  bool sleep(std::chrono::milliseconds d, const std::function<bool()>& cut) {
    slept.push_back(d);
    if (on_sleep) {
      on_sleep(d);
    }
    if (cut && cut()) {
      return false;
    }
    clock_.advance(d);
    return true;
  }

  FakeClock& clock_;
};

class ClockedTransport : public HttpTransport {
 public:
  explicit ClockedTransport(FakeClock& clock) : clock_(clock) {}
  HttpResponse send(const HttpRequest& request) override {
    try {
      auto response = fake.send(request);
      clock_.advance(std::chrono::milliseconds(10));
      return response;
    } catch (const TransportError& e) {
      clock_.advance(e.timed_out() ? request.timeout : std::chrono::milliseconds(10));
      throw;
    }
  }
  // Script answers here; its `requests` records what was sent.
  FakeTransport fake;

 private:
  FakeClock& clock_;
};

}  // namespace pc::testing
