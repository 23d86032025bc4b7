#pragma once
// Time for the monitoring tests without sleeping: a FakeClock, a sleeper that
// advances it, and a transport that advances it as a real one would (a
// scripted timeout costs the request's whole timeout, any other answer 10 ms).

#include "common/clock.hpp"
#include "http/fake_transport.hpp"

namespace pc::testing {

class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_);
  }

 private:
  std::chrono::steady_clock::time_point start_{std::chrono::seconds(1000)};
  std::chrono::steady_clock::time_point now_ = start_;
};

class ClockedSleeper : public Sleeper {
 public:
  explicit ClockedSleeper(FakeClock& clock) : clock_(clock) {}
  bool sleep_for(std::chrono::milliseconds d) override {
    slept.push_back(d);
    clock_.advance(d);
    return true;
  }
  void sleep_through(std::chrono::milliseconds d) override { sleep_for(d); }
  std::vector<std::chrono::milliseconds> slept;

 private:
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
