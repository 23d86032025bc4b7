#include "cycle/summary.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace pc;

TEST_CASE("CycleSummary JSON and one line", "[cycle]") {
  CycleSummary s;
  s.pool = "etl";
  s.worker_name = "w";
  s.duration = std::chrono::milliseconds(12345);
  s.phases.push_back({"resume", PhaseStatus::kOk, std::chrono::milliseconds(12), ""});
  s.phases.push_back({"trigger", PhaseStatus::kSkipped, std::chrono::milliseconds(0), "none"});
  s.runs.push_back({"1", "a", "COMPLETED", "Completed", ""});
  s.runs.push_back({"2", "b", "COMPLETED", "Completed", ""});
  s.runs.push_back({"3", "c", "FAILED", "Failed", "boom"});
  s.pool_resumed = true;
  s.pool_paused_at_end = true;
  s.exit_code = ExitCode::kRunsFailed;
  s.preflight_install = std::chrono::milliseconds(840);

  auto j = s.to_json();
  CHECK(j["preflight_ms"] == nlohmann::json{{"sync", 0}, {"install", 840}, {"checks", 0}});
  CHECK(j["exit_code"] == 1);
  CHECK(j["outcome"] == "runs_failed");
  CHECK(j["runs"]["COMPLETED"] == 2);
  CHECK(j["runs"]["FAILED"] == 1);
  CHECK(j["phases"][1]["status"] == "skipped");
  CHECK(j["phases"][1]["message"] == "none");
  CHECK(j["pool_paused_at_end"] == true);
  CHECK(s.one_line() ==
        "cycle finished: exit 1 (runs_failed) in 12.3 s; runs: 2 COMPLETED, 1 FAILED; pool "
        "\"etl\" paused");

  s.pool_paused_at_end = false;
  CHECK(s.one_line().find("MAY STILL BE RESUMED") != std::string::npos);
}

TEST_CASE("write_summary_file redacts and replaces atomically", "[cycle]") {
  auto dir = std::filesystem::temp_directory_path() / "pc-summary-test";
  std::filesystem::create_directories(dir);
  auto path = dir / "s.json";
  CycleSummary s;
  s.message = "failed with key sekret-key-1";
  Redactor r;
  r.add_secret("sekret-key-1");
  write_summary_file(path, s, r);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("sekret-key-1") == std::string::npos);
  CHECK(nlohmann::json::parse(text)["message"] == "failed with key ***");
  CHECK_FALSE(std::filesystem::exists(dir / "s.json.tmp"));
  std::filesystem::remove_all(dir);
}
