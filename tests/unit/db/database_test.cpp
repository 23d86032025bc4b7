#include "db/database.hpp"

#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "repo/repo_fixture.hpp"

using namespace pc;
using namespace pc::testing;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

namespace {

std::string failure(const std::string& url, seconds timeout) {
  try {
    check_database(url, timeout);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kPreflight);
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  FAIL("expected pc::Error(kPreflight)");
  return "";
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("describe_database", "[db]") {
  CHECK(describe_database("postgresql://app:pw-123@db.example.com:6543/prod") ==
        "app@db.example.com:6543/prod");
  CHECK(describe_database("postgres://db.example.com/prod") == "db.example.com/prod");
  CHECK(describe_database("host=10.0.0.5 port=5432 user=app password=pw-123 dbname=x") ==
        "app@10.0.0.5:5432/x");
  CHECK_THROWS_AS(describe_database("postgresql://a:b@host:notaport:x/db?bogus=1"), Error);
}

TEST_CASE("check_database", "[db]") {
  SECTION("nothing listening: exit 4, host named, password absent") {
    int port = 0;
    ::close(listen_loopback(1, port));
    const std::string url =
        "postgresql://app:pw-s3cret@127.0.0.1:" + std::to_string(port) + "/prod";
    std::string message = failure(url, seconds(5));
    CHECK_THAT(message, Catch::StartsWith("database check failed for app@127.0.0.1:" +
                                          std::to_string(port) + "/prod (DATABASE_URL): "));
    CHECK_THAT(message, Catch::Contains("Connection refused"));
    CHECK_THAT(message, !Catch::Contains("pw-s3cret"));
  }

  SECTION("a server that accepts and never answers: bounded by the timeout") {
    SilentListener silent;
    const std::string url =
        "postgresql://app:pw-s3cret@127.0.0.1:" + std::to_string(silent.port()) +
        "/prod?sslmode=disable";
    auto start = Clock::now();
    std::string message = failure(url, seconds(2));
    CHECK(seconds_since(start) < 2 + 1.5);
    CHECK_THAT(message, Catch::EndsWith("no answer within 2 s while connecting"));
    CHECK_THAT(message, !Catch::Contains("pw-s3cret"));
  }

  SECTION("a connect that hangs (blackholed): bounded by the timeout") {
    BlackholeListener blackhole;
    const std::string url =
        "postgresql://app:pw-s3cret@127.0.0.1:" + std::to_string(blackhole.port()) + "/prod";
    auto start = Clock::now();
    std::string message = failure(url, seconds(2));
    CHECK(seconds_since(start) < 2 + 1.5);
    CHECK_THAT(message, Catch::Contains("no answer within 2 s"));
  }

  SECTION("an invalid connection string: exit 4, password absent") {
    std::string message = failure("postgresql://app:pw-s3cret@h/db?nonsense=1", seconds(2));
    CHECK_THAT(message, Catch::StartsWith("DATABASE_URL is not a valid PostgreSQL connection"));
    CHECK_THAT(message, !Catch::Contains("pw-s3cret"));
  }
}
