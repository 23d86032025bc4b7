#include "monitor/monitor.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "common/fake_clock.hpp"

using namespace pc;
using namespace pc::testing;

namespace {

const std::string kPingUrl = "http://127.0.0.1:9/ping/0e2a3c3b-6d4e-4f5a-9b8c-7d6e5f4a3b2c";

Config monitored() {
  Config config;
  config.ping_url = kPingUrl;
  config.pushgateway_url = "http://127.0.0.1:9091";
  config.pushgateway_grouping = {{"pool", "etl"}};
  return config;
}

}  // namespace

TEST_CASE("CycleMonitor: what a cycle sends, in order, within the bounds", "[monitor]") {
  FakeClock clock;
  ClockedSleeper sleeper(clock);
  ClockedTransport transport(clock);
  Logger log = Logger::null();
  CycleSummary summary;
  summary.pool = "etl";
  summary.exit_code = ExitCode::kTerminated;

  SECTION("nothing configured: nothing sent") {
    Config config;
    CycleMonitor monitor(config, log, transport, sleeper, clock, "rid");
    CHECK_FALSE(monitor.enabled());
    monitor.cycle_started();
    monitor.cycle_finished(summary);
    CHECK(transport.fake.requests.empty());
  }

  SECTION("start; then the exit-status ping before the push") {
    Config config = monitored();
    CycleMonitor monitor(config, log, transport, sleeper, clock, "rid");
    transport.fake.reply(200, "OK").reply(200, "OK").reply(200);
    monitor.cycle_started();
    monitor.cycle_finished(summary);
    REQUIRE(transport.fake.requests.size() == 3);
    CHECK(transport.fake.requests[0].url == kPingUrl + "/start?rid=rid");
    CHECK(transport.fake.requests[1].url == kPingUrl + "/143?rid=rid");
    CHECK(transport.fake.requests[1].body.rfind("cycle finished: exit 143", 0) == 0);
    CHECK(transport.fake.requests[2].method == "POST");
    CHECK(transport.fake.requests[2].url ==
          "http://127.0.0.1:9091/metrics/job/prefect_cycle/pool/etl");
  }

  SECTION("everything hangs: the end costs at most the 4-s end budget") {
    Config config = monitored();
    CycleMonitor monitor(config, log, transport, sleeper, clock, "rid");
    for (int i = 0; i < 6; ++i) {
      transport.fake.fail("timed out", true);
    }
    monitor.cycle_finished(summary);
    CHECK(clock.elapsed() <= kMonitorEndBudget);
    // The ping had its 3 s; the push got the last second.
    REQUIRE(transport.fake.requests.size() == 3);
    CHECK(transport.fake.requests[2].url.find("/metrics/job/") != std::string::npos);
    CHECK(transport.fake.requests[2].timeout == std::chrono::milliseconds(1000));
  }
}
