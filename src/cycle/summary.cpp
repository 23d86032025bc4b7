#include "cycle/summary.hpp"

#include <cstdio>
#include <fstream>

#include "common/error.hpp"
#include "prefect/types.hpp"

namespace pc {

std::string_view to_string(PhaseStatus status) {
  switch (status) {
    case PhaseStatus::kOk:
      return "ok";
    case PhaseStatus::kSkipped:
      return "skipped";
    case PhaseStatus::kFailed:
      return "failed";
    case PhaseStatus::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

std::map<std::string, int> CycleSummary::runs_by_state() const {
  std::map<std::string, int> counts;
  for (const auto& run : runs) {
    ++counts[run.state_type];
  }
  return counts;
}

nlohmann::json CycleSummary::to_json() const {
  nlohmann::json phases_json = nlohmann::json::array();
  for (const auto& phase : phases) {
    nlohmann::json p{{"name", phase.name},
                     {"status", to_string(phase.status)},
                     {"duration_ms", phase.duration.count()}};
    if (!phase.message.empty()) {
      p["message"] = phase.message;
    }
    phases_json.push_back(std::move(p));
  }
  nlohmann::json runs_json = nlohmann::json::array();
  for (const auto& run : runs) {
    runs_json.push_back({{"id", run.id},
                         {"name", run.name},
                         {"state_type", run.state_type},
                         {"state_name", run.state_name},
                         {"message", run.message}});
  }
  return {
      {"version", PREFECT_CYCLE_VERSION},
      {"pool", pool},
      {"worker_name", worker_name},
      {"started_at", format_iso8601(started_at)},
      {"duration_ms", duration.count()},
      {"exit_code", to_int(exit_code)},
      {"outcome", exit_code_name(exit_code)},
      {"message", message},
      {"pool_resumed", pool_resumed},
      {"pool_paused_at_end",
       pool_paused_at_end ? nlohmann::json(*pool_paused_at_end) : nlohmann::json()},
      {"pool_left_resumed_for", pool_left_resumed_for},
      {"phases", phases_json},
      {"preflight_ms",
       {{"sync", preflight_sync.count()},
        {"install", preflight_install.count()},
        {"checks", preflight_checks.count()}}},
      {"runs", runs_by_state()},
      {"flow_runs", runs_json},
      {"triggered_run_ids", triggered_run_ids},
  };
}

std::string CycleSummary::one_line() const {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%.1f", static_cast<double>(duration.count()) / 1000.0);
  std::string line = "cycle finished: exit " + std::to_string(to_int(exit_code)) + " (" +
                     std::string(exit_code_name(exit_code)) + ") in " + seconds + " s; runs: ";
  auto counts = runs_by_state();
  if (counts.empty()) {
    line += "none";
  }
  bool first = true;
  for (const auto& [state, n] : counts) {
    line += (first ? "" : ", ") + std::to_string(n) + " " + state;
    first = false;
  }
  line += "; pool \"" + pool + "\" ";
  if (!pool_paused_at_end) {
    line += !pool_left_resumed_for.empty()
                ? "left resumed for active worker(s) " + pool_left_resumed_for
                : (pool_resumed ? "left resumed" : "untouched");
  } else {
    line += *pool_paused_at_end ? "paused" : "MAY STILL BE RESUMED";
  }
  return line;
}

void write_summary_file(const std::filesystem::path& path, const CycleSummary& summary,
                        const Redactor& redactor) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << redactor.redact(
               summary.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace))
        << '\n';
    if (!out) {
      throw usage_error("PREFECT_CYCLE_SUMMARY_FILE: cannot write \"" + path.string() + "\"",
                        Hint::kSummaryFile);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    throw usage_error(
        "PREFECT_CYCLE_SUMMARY_FILE: cannot write \"" + path.string() + "\": " + ec.message(),
        Hint::kSummaryFile);
  }
}

}  // namespace pc
