#include "log/logger.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pc;

TEST_CASE("Logger text format", "[log]") {
  std::ostringstream out;
  auto redactor = std::make_shared<Redactor>();
  redactor->add_secret("topsecret");
  Logger log(LogLevel::kInfo, LogFormat::kText, redactor, out);
  log.debug("hidden");
  log.with({{"phase", "resume"}}).info("pool resumed with topsecret", {{"pool", "etl"}});
  const std::string text = out.str();
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(text.find(" info    [phase=resume pool=etl] pool resumed with ***\n") != std::string::npos);
  CHECK(text.find("topsecret") == std::string::npos);
  // ISO 8601 UTC timestamp first.
  CHECK(text.size() > 24);
  CHECK(text[4] == '-');
  CHECK(text[10] == 'T');
  CHECK(text[23] == 'Z');
}

TEST_CASE("Logger JSON format: one object per line", "[log]") {
  std::ostringstream out;
  auto redactor = std::make_shared<Redactor>();
  redactor->add_secret("topsecret");
  Logger log(LogLevel::kDebug, LogFormat::kJson, redactor, out);
  log.with({{"phase", "worker"}})
      .warn("line with \"quotes\" and topsecret", {{"flow_run_id", "abc"}});
  log.info("url https://u:pw@h/x");
  std::istringstream lines(out.str());
  std::string line;
  REQUIRE(std::getline(lines, line));
  auto first = nlohmann::json::parse(line);
  CHECK(first["level"] == "warn");  // Railway's name
  CHECK(first["message"] == "line with \"quotes\" and ***");
  CHECK(first["phase"] == "worker");
  CHECK(first["flow_run_id"] == "abc");
  CHECK(first["time"].get<std::string>().back() == 'Z');
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line)["message"] == "url https://u:***@h/x");
}

TEST_CASE("Logger JSON survives invalid UTF-8 from a child", "[log]") {
  std::ostringstream out;
  Logger log(LogLevel::kInfo, LogFormat::kJson, nullptr, out);
  log.info(std::string("bad \xff byte"));
  CHECK_NOTHROW(nlohmann::json::parse(out.str()));
}

TEST_CASE("Logger JSON: Railway's level names, numbers as numbers, own keys kept", "[log]") {
  std::ostringstream out;
  Logger log(LogLevel::kTrace, LogFormat::kJson, nullptr, out);
  log.trace("t");
  log.critical("c", {{"exit_code", 3}, {"seconds", 1.5}, {"level", "spoofed"}});
  std::istringstream lines(out.str());
  std::string line;
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line)["level"] == "debug");
  REQUIRE(std::getline(lines, line));
  auto critical = nlohmann::json::parse(line);
  CHECK(critical["level"] == "error");
  CHECK(critical["exit_code"] == 3);
  CHECK(critical["exit_code"].is_number_integer());
  CHECK(critical["seconds"] == 1.5);
}
