#include "monitor/pushgateway.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "common/fake_clock.hpp"

using namespace pc;
using namespace pc::testing;

TEST_CASE("base64url is RFC 4648 section 5 with padding", "[monitor]") {
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg==");
  CHECK(base64url("fo") == "Zm8=");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("/var/tmp") == "L3Zhci90bXA=");
  CHECK(base64url("\xfb\xff") == "-_8=");
}

TEST_CASE("pushgateway_group_url escapes the grouping key", "[monitor]") {
  CHECK(pushgateway_group_url("http://pg:9091", "prefect_cycle", {{"pool", "etl"}}) ==
        "http://pg:9091/metrics/job/prefect_cycle/pool/etl");
  CHECK(pushgateway_group_url("http://pg:9091/", "j", {}) == "http://pg:9091/metrics/job/j");
  SECTION("percent-encoding for spaces and the like") {
    CHECK(pushgateway_path_label("pool", "my pool+1") == "/pool/my%20pool%2B1");
    CHECK(pushgateway_path_label("pool", "étl") == "/pool/%C3%A9tl");
  }
  SECTION("@base64 for '/', empty and dot values") {
    CHECK(pushgateway_path_label("path", "/var/tmp") == "/path@base64/L3Zhci90bXA=");
    CHECK(pushgateway_path_label("x", "") == "/x@base64/=");
    CHECK(pushgateway_path_label("x", "..") == "/x@base64/Li4=");
    CHECK(pushgateway_group_url("https://u:p@pg/prefix", "a/b", {{"env", "prod"}}) ==
          "https://u:p@pg/prefix/metrics/job@base64/YS9i/env/prod");
  }
  CHECK(pushgateway_ready_url("http://pg:9091/") == "http://pg:9091/-/ready");
}

TEST_CASE("cycle_metrics_push: PUT on success, POST otherwise", "[monitor]") {
  CycleSummary s;
  s.exit_code = ExitCode::kOk;
  auto put = cycle_metrics_push("http://pg:9091", "prefect_cycle", {{"pool", "etl"}}, s);
  CHECK(put.method == "PUT");
  CHECK(put.url == "http://pg:9091/metrics/job/prefect_cycle/pool/etl");
  CHECK(put.body.find("prefect_cycle_last_success_timestamp_seconds") != std::string::npos);
  CHECK(put.headers.at(0).second == "text/plain; version=0.0.4; charset=utf-8");

  s.exit_code = ExitCode::kRunsFailed;
  auto post = cycle_metrics_push("http://pg:9091", "prefect_cycle", {{"pool", "etl"}}, s);
  CHECK(post.method == "POST");
  // POST replaces only the families it carries: the last success stays.
  CHECK(post.body.find("last_success") == std::string::npos);
}

TEST_CASE("push_cycle_metrics: bounded, a failure is a warning without the password", "[monitor]") {
  FakeClock clock;
  ClockedSleeper sleeper(clock);
  ClockedTransport transport(clock);
  auto redactor = std::make_shared<Redactor>();
  std::ostringstream out;
  Logger log(LogLevel::kInfo, LogFormat::kText, redactor, out);
  CycleSummary s;

  transport.fake.reply(500).reply(500).reply(500);
  CHECK_FALSE(push_cycle_metrics(transport, sleeper, clock, log, "http://user:pw1234@pg:9091",
                                 "prefect_cycle", {{"pool", "etl"}}, s));
  CHECK(transport.fake.requests.size() == 3);
  CHECK(clock.elapsed() <= kMonitorRequestBudget);
  CHECK(out.str().find("PUT http://user:***@pg:9091/metrics/job/prefect_cycle/pool/etl failed") !=
        std::string::npos);
  CHECK(out.str().find("pw1234") == std::string::npos);
}
