#include "monitor/ping.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <sstream>

#include "common/fake_clock.hpp"

using namespace pc;
using namespace pc::testing;

namespace {

const std::string kUrl = "https://hc-ping.com/0e2a3c3b-6d4e-4f5a-9b8c-7d6e5f4a3b2c";

}  // namespace

TEST_CASE("ping_url: suffix before the query, rid appended", "[monitor]") {
  CHECK(ping_url(kUrl, "/start", "r1") == kUrl + "/start?rid=r1");
  CHECK(ping_url(kUrl, "", "r1") == kUrl + "?rid=r1");
  CHECK(ping_url(kUrl, "/143", "") == kUrl + "/143");
  CHECK(ping_url(kUrl + "/", "/1", "r1") == kUrl + "/1?rid=r1");
  CHECK(ping_url("https://h/p/key/slug?create=1", "/start", "r1") ==
        "https://h/p/key/slug/start?create=1&rid=r1");
}

TEST_CASE("ping_url_for_display shows scheme and host only", "[monitor]") {
  CHECK(ping_url_for_display(kUrl) == "https://hc-ping.com/***");
  CHECK(ping_url_for_display("http://u:pw@127.0.0.1:8000/ping/abc?x=1") ==
        "http://127.0.0.1:8000/***");
  CHECK(ping_url_for_display("garbage") == "***");
}

TEST_CASE("ping_body: summary line and JSON, redacted, cut at the limit", "[monitor]") {
  Redactor redactor;
  redactor.add_secret("s3cret");

  SECTION("short bodies are whole") {
    CHECK(ping_body("cycle finished: exit 0", R"({"a":"s3cret"})", redactor) ==
          "cycle finished: exit 0\n{\"a\":\"***\"}");
  }

  SECTION("long bodies are cut, with a note, within the limit") {
    std::string json(20000, 'x');
    auto body = ping_body("line", json, redactor, 1000);
    CHECK(body.size() <= 1000);
    CHECK(body.rfind("line\nxxx", 0) == 0);
    CHECK(body.find("(cut to 1000 of 20005 bytes)") != std::string::npos);
  }

  SECTION("a cut never splits a UTF-8 character") {
    std::string json;
    for (int i = 0; i < 600; ++i) {
      json += "\xC3\xA9";  // é
    }
    auto body = ping_body("l", json, redactor, 200);
    auto cut = body.find("\n... (cut");
    REQUIRE(cut != std::string::npos);
    // "l\n" then whole two-byte characters only.
    CHECK((cut - 2) % 2 == 0);
  }
}

TEST_CASE("Pinger: start, success and exit-status pings", "[monitor]") {
  FakeClock clock;
  ClockedSleeper sleeper(clock);
  ClockedTransport transport(clock);
  auto redactor = std::make_shared<Redactor>();
  redactor->add_secret(kUrl);
  std::ostringstream out;
  Logger log(LogLevel::kDebug, LogFormat::kText, redactor, out);
  Pinger pinger(kUrl, "rid-1", transport, sleeper, clock, log);

  SECTION("start is a GET of /start") {
    transport.fake.reply(200, "OK");
    CHECK(pinger.start());
    REQUIRE(transport.fake.requests.size() == 1);
    CHECK(transport.fake.requests[0].method == "GET");
    CHECK(transport.fake.requests[0].url == kUrl + "/start?rid=rid-1");
    CHECK(out.str().find("start ping sent to https://hc-ping.com/***/start") != std::string::npos);
  }

  SECTION("exit 0 is a POST of the plain URL with the body") {
    transport.fake.reply(200, "OK");
    CHECK(pinger.finish(ExitCode::kOk, "summary"));
    CHECK(transport.fake.requests[0].method == "POST");
    CHECK(transport.fake.requests[0].url == kUrl + "?rid=rid-1");
    CHECK(transport.fake.requests[0].body == "summary");
  }

  SECTION("exit 1 and 143 are POSTs of /1 and /143") {
    transport.fake.reply(200, "OK").reply(200, "OK");
    pinger.finish(ExitCode::kRunsFailed, "");
    pinger.finish(ExitCode::kTerminated, "");
    CHECK(transport.fake.requests[0].url == kUrl + "/1?rid=rid-1");
    CHECK(transport.fake.requests[1].url == kUrl + "/143?rid=rid-1");
  }

  SECTION("a failed ping is a warning naming no token, within the bound") {
    transport.fake.fail("hc-ping.com:443: timed out", true)
        .fail("hc-ping.com:443: timed out", true)
        .fail("hc-ping.com:443: timed out", true);
    CHECK_FALSE(pinger.finish(ExitCode::kOk, "summary"));
    CHECK(clock.elapsed() <= kMonitorRequestBudget);
    const std::string logged = out.str();
    CHECK(logged.find("warning") != std::string::npos);
    CHECK(logged.find("success ping to https://hc-ping.com/*** failed") != std::string::npos);
    CHECK(logged.find("0e2a3c3b") == std::string::npos);
  }
}
