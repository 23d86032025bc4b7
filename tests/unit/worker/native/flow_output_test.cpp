#include "worker/native/flow_output.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pc;

namespace {

std::vector<nlohmann::json> events(const std::string& out) {
  std::vector<nlohmann::json> parsed;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    parsed.push_back(nlohmann::json::parse(line));
  }
  return parsed;
}

}  // namespace

TEST_CASE("prefect_line_level", "[worker]") {
  CHECK(prefect_line_level("12:34:56.789 | INFO    | prefect.flow_runs - Downloading") ==
        LogLevel::kInfo);
  CHECK(prefect_line_level("12:34:56.789 | WARNING | Flow run 'x' - careful") == LogLevel::kWarn);
  CHECK(prefect_line_level("12:34:56.789 | ERROR   | Flow run 'x' - boom") == LogLevel::kError);
  CHECK(prefect_line_level("12:34:56.789 | CRITICAL | x") == LogLevel::kCritical);
  CHECK(prefect_line_level("12:34:56.789 | DEBUG   | x") == LogLevel::kDebug);
  CHECK_FALSE(prefect_line_level("12:34:56.789 | NOTICE | x"));
  CHECK_FALSE(prefect_line_level("hello from print"));
  CHECK_FALSE(prefect_line_level("12:34:56 | INFO | no milliseconds"));
  CHECK_FALSE(prefect_line_level(""));
}

TEST_CASE("FlowOutput: levels and tracebacks as one event", "[worker]") {
  std::ostringstream out;
  Logger log(LogLevel::kDebug, LogFormat::kJson, nullptr, out);
  using Clock = FlowOutput::Clock;
  const auto t0 = Clock::now();

  SECTION("an ERROR line with its traceback is one error event") {
    {
      FlowOutput output(log);
      output.line("12:00:00.000 | INFO    | Flow run 'x' - Beginning flow run", t0);
      output.line("12:00:00.100 | ERROR   | Flow run 'x' - Encountered exception", t0);
      output.line("Traceback (most recent call last):", t0);
      output.line("  File \"flows.py\", line 3, in fail", t0);
      output.line("    raise ValueError(\"boom\")", t0);
      output.line("ValueError: boom", t0);
      output.line("12:00:00.200 | INFO    | Flow run 'x' - Finished in state Failed", t0);
    }  // the destructor writes the last event
    auto e = events(out.str());
    REQUIRE(e.size() == 3);
    CHECK(e[0]["level"] == "info");
    CHECK(e[1]["level"] == "error");
    CHECK(e[1]["message"] ==
          "12:00:00.100 | ERROR   | Flow run 'x' - Encountered exception\n"
          "Traceback (most recent call last):\n  File \"flows.py\", line 3, in fail\n"
          "    raise ValueError(\"boom\")\nValueError: boom");
    CHECK(e[2]["level"] == "info");
  }
  SECTION("a bare traceback (a crash at import) is an error; a print after it is info") {
    FlowOutput output(log);
    output.line("Traceback (most recent call last):", t0);
    output.line("  File \"x.py\", line 1, in <module>", t0);
    output.line("ModuleNotFoundError: No module named 'nope'", t0);
    output.line("hello from print", t0);
    output.flush();
    auto e = events(out.str());
    REQUIRE(e.size() == 2);
    CHECK(e[0]["level"] == "error");
    CHECK(e[0]["message"].get<std::string>().find("ModuleNotFoundError") != std::string::npos);
    CHECK(e[1]["level"] == "info");
    CHECK(e[1]["message"] == "hello from print");
  }
  SECTION("a WARNING keeps its level; a quiet stream writes the pending event") {
    FlowOutput output(log);
    output.line("12:00:00.000 | WARNING | Flow run 'x' - careful", t0);
    output.tick(t0 + std::chrono::milliseconds(100));
    CHECK(out.str().empty());  // might still get a continuation
    output.tick(t0 + FlowOutput::kQuietFlush);
    auto e = events(out.str());
    REQUIRE(e.size() == 1);
    CHECK(e[0]["level"] == "warn");
  }
  SECTION("an event is cut at kMaxEventLines") {
    FlowOutput output(log);
    output.line("12:00:00.000 | ERROR   | x", t0);
    for (std::size_t i = 0; i < FlowOutput::kMaxEventLines + 5; ++i) {
      output.line("  frame", t0);
    }
    output.flush();
    auto e = events(out.str());
    REQUIRE(e.size() == 2);  // one full event, then the rest as another
    CHECK(e[0]["level"] == "error");
    CHECK(e[1]["level"] == "error");
  }
}
