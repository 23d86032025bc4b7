#include "monitor/delivery.hpp"

#include <catch2/catch.hpp>

#include "common/fake_clock.hpp"

using namespace pc;
using namespace pc::testing;
using std::chrono::milliseconds;

namespace {

HttpRequest ping() {
  HttpRequest request;
  request.method = "POST";
  request.url = "https://hc-ping.com/uuid";
  return request;
}

}  // namespace

TEST_CASE("deliver_bounded: attempts, retries and the time bound", "[monitor]") {
  FakeClock clock;
  ClockedSleeper sleeper(clock);
  ClockedTransport transport(clock);

  SECTION("a 2xx answer is one attempt with the attempt timeout") {
    transport.fake.reply(200, "OK");
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK(result.delivered);
    CHECK(result.attempts == 1);
    CHECK(result.status == 200);
    REQUIRE(transport.fake.requests.size() == 1);
    CHECK(transport.fake.requests[0].timeout == kMonitorAttemptTimeout);
    CHECK(sleeper.slept.empty());
  }

  SECTION("500 and a refused connection are retried after 250 and 500 ms") {
    transport.fake.reply(500, "oops").fail("Connection refused").reply(200, "OK");
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK(result.delivered);
    CHECK(result.attempts == 3);
    CHECK(sleeper.slept == std::vector<milliseconds>{milliseconds(250), milliseconds(500)});
    CHECK(result.attempt_outcomes == std::vector<std::string>{"HTTP 500 (10 ms)",
                                                              "Connection refused (10 ms)",
                                                              "HTTP 200 (10 ms)"});
  }

  SECTION("three failures: not delivered, the last reason kept") {
    transport.fake.reply(503).reply(502).reply(500, "down\nfor maintenance");
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK_FALSE(result.delivered);
    CHECK(result.attempts == 3);
    CHECK(result.status == 500);
    CHECK(result.error == "HTTP 500: down for maintenance");
  }

  SECTION("a 404 (unknown check) is not retried") {
    transport.fake.reply(404, "not found");
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK_FALSE(result.delivered);
    CHECK(result.attempts == 1);
    CHECK(result.error == "HTTP 404: not found");
  }

  SECTION("429 and 408 are retried") {
    CHECK(is_retryable_monitor_status(429));
    CHECK(is_retryable_monitor_status(408));
    CHECK(is_retryable_monitor_status(503));
    CHECK_FALSE(is_retryable_monitor_status(400));
    CHECK_FALSE(is_retryable_monitor_status(401));
  }

  SECTION("a non-retryable transport error is one attempt") {
    transport.fake.script_error(TransportError("certificate problem", false, false));
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK(result.attempts == 1);
    CHECK(result.error == "certificate problem");
  }

  SECTION("an endpoint that hangs costs at most the 3-s budget") {
    transport.fake.fail("timed out", true).fail("timed out", true).fail("timed out", true);
    auto result = deliver_bounded(transport, sleeper, clock, ping());
    CHECK_FALSE(result.delivered);
    CHECK(clock.elapsed() <= kMonitorRequestBudget);
    CHECK(result.elapsed == clock.elapsed());
    // 2 s, a 250-ms pause, then the 750 ms that are left.
    REQUIRE(transport.fake.requests.size() == 2);
    CHECK(transport.fake.requests[0].timeout == milliseconds(2000));
    CHECK(transport.fake.requests[1].timeout == milliseconds(750));
  }

  SECTION("a shared deadline shortens the budget") {
    transport.fake.fail("timed out", true).fail("timed out", true);
    auto result = deliver_bounded(transport, sleeper, clock, ping(), DeliveryBounds{},
                                  clock.now() + milliseconds(1000));
    CHECK(clock.elapsed() <= milliseconds(1000));
    CHECK(transport.fake.requests.at(0).timeout == milliseconds(1000));
    CHECK(result.attempts == 1);
  }

  SECTION("a deadline already passed sends nothing") {
    auto result = deliver_bounded(transport, sleeper, clock, ping(), DeliveryBounds{}, clock.now());
    CHECK(result.attempts == 0);
    CHECK(result.error == "no time left to send it");
    CHECK(transport.fake.requests.empty());
  }
}
