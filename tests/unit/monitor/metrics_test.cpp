#include "monitor/metrics.hpp"

#include <catch2/catch.hpp>

using namespace pc;
using std::chrono::milliseconds;

namespace {

CycleSummary finished_cycle(ExitCode code) {
  CycleSummary s;
  s.pool = "etl";
  s.started_at = std::chrono::system_clock::time_point(milliseconds(1796083200250));
  s.duration = milliseconds(12500);
  s.phases = {{"preflight", PhaseStatus::kOk, milliseconds(120), ""},
              {"resume", PhaseStatus::kOk, milliseconds(30), ""},
              {"trigger", PhaseStatus::kSkipped, milliseconds(0), "none"},
              {"worker", PhaseStatus::kOk, milliseconds(11000), ""},
              {"wait", PhaseStatus::kOk, milliseconds(1200), ""},
              {"pause", PhaseStatus::kOk, milliseconds(150), ""}};
  s.runs = {{"1", "a", "COMPLETED", "Completed", ""}, {"2", "b", "FAILED", "Failed", "boom"}};
  s.preflight_sync = milliseconds(40);
  s.preflight_install = milliseconds(70);
  s.preflight_checks = milliseconds(10);
  s.pool_resumed = true;
  s.pool_paused_at_end = true;
  s.exit_code = code;
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("render_cycle_metrics: the gauges of a cycle", "[monitor]") {
  SECTION("a failed cycle: no last_success, runs by state with zeros") {
    auto text = render_cycle_metrics(finished_cycle(ExitCode::kRunsFailed));
    CHECK(has_line(text,
                   "# HELP prefect_cycle_last_start_timestamp_seconds Unix time when the "
                   "last prefect-cycle run started."));
    CHECK(has_line(text, "# TYPE prefect_cycle_last_start_timestamp_seconds gauge"));
    CHECK(has_line(text, "prefect_cycle_last_start_timestamp_seconds 1796083200.250"));
    CHECK(has_line(text, "prefect_cycle_last_end_timestamp_seconds 1796083212.750"));
    CHECK(text.find("last_success") == std::string::npos);
    CHECK(has_line(text, "prefect_cycle_duration_seconds 12.500"));
    CHECK(has_line(text, "prefect_cycle_phase_duration_seconds{phase=\"preflight\"} 0.120"));
    CHECK(has_line(text, "prefect_cycle_phase_duration_seconds{phase=\"worker\"} 11.000"));
    CHECK(has_line(text, "prefect_cycle_phase_duration_seconds{phase=\"trigger\"} 0.000"));
    CHECK(has_line(text, "prefect_cycle_preflight_duration_seconds{step=\"sync\"} 0.040"));
    CHECK(has_line(text, "prefect_cycle_preflight_duration_seconds{step=\"install\"} 0.070"));
    CHECK(has_line(text, "prefect_cycle_preflight_duration_seconds{step=\"checks\"} 0.010"));
    CHECK(has_line(text, "prefect_cycle_flow_runs{state=\"COMPLETED\"} 1"));
    CHECK(has_line(text, "prefect_cycle_flow_runs{state=\"FAILED\"} 1"));
    CHECK(has_line(text, "prefect_cycle_flow_runs{state=\"CRASHED\"} 0"));
    CHECK(has_line(text, "prefect_cycle_flow_runs{state=\"SCHEDULED\"} 0"));
    CHECK(has_line(text, "prefect_cycle_flow_runs{state=\"UNKNOWN\"} 0"));
    CHECK(has_line(text, "prefect_cycle_exit_code 1"));
    CHECK(has_line(text, "prefect_cycle_pool_paused 1"));
    CHECK(text.back() == '\n');
  }

  SECTION("exit 0 adds last_success = the end time") {
    auto text = render_cycle_metrics(finished_cycle(ExitCode::kOk));
    CHECK(has_line(text, "# TYPE prefect_cycle_last_success_timestamp_seconds gauge"));
    CHECK(has_line(text, "prefect_cycle_last_success_timestamp_seconds 1796083212.750"));
    CHECK(has_line(text, "prefect_cycle_exit_code 0"));
  }

  SECTION("phases that did not run are 0; every phase is listed") {
    CycleSummary s = finished_cycle(ExitCode::kUsage);
    s.phases = {{"preflight", PhaseStatus::kFailed, milliseconds(80), "no pool"}};
    auto text = render_cycle_metrics(s);
    for (auto phase : cycle_phase_names()) {
      CHECK(text.find("{phase=\"" + std::string(phase) + "\"}") != std::string::npos);
    }
    CHECK(has_line(text, "prefect_cycle_phase_duration_seconds{phase=\"wait\"} 0.000"));
  }

  SECTION("pool_paused: 0 when the pause failed or was off, 1 when never resumed") {
    CycleSummary s = finished_cycle(ExitCode::kApi);
    s.pool_paused_at_end = false;
    CHECK(has_line(render_cycle_metrics(s), "prefect_cycle_pool_paused 0"));
    s.pool_paused_at_end.reset();  // PREFECT_AUTO_PAUSE=false
    CHECK(has_line(render_cycle_metrics(s), "prefect_cycle_pool_paused 0"));
    s.pool_resumed = false;  // the preflight failed
    CHECK(has_line(render_cycle_metrics(s), "prefect_cycle_pool_paused 1"));
  }

  SECTION("every family has one HELP and one TYPE line, all gauges") {
    auto text = render_cycle_metrics(finished_cycle(ExitCode::kOk));
    std::size_t helps = 0;
    std::size_t types = 0;
    for (std::size_t pos = 0; (pos = text.find("# HELP ", pos)) != std::string::npos; ++pos) {
      ++helps;
    }
    for (std::size_t pos = 0; (pos = text.find(" gauge\n", pos)) != std::string::npos; ++pos) {
      ++types;
    }
    CHECK(helps == 9);
    CHECK(types == 9);
  }
}
