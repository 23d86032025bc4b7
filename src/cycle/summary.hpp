#pragma once
// What a cycle did, for the final log line and the JSON summary file.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/exit_code.hpp"
#include "common/redact.hpp"
#include "worker/phase.hpp"

namespace pc {

enum class PhaseStatus { kOk, kSkipped, kFailed, kInterrupted };

struct PhaseRecord {
  std::string name;
  PhaseStatus status = PhaseStatus::kOk;
  std::chrono::milliseconds duration{0};
  std::string message;  // why skipped / failed
};

struct CycleSummary {
  std::string pool;
  std::string pool_id;  // as read by the preflight ("" before); not in to_json()
  std::string worker_name;
  std::chrono::system_clock::time_point started_at{};
  std::chrono::milliseconds duration{0};
  std::vector<PhaseRecord> phases;
  // Where the preflight's time went: the repository check and code sync,
  // the installs, the database check and interpreter probe (0 when the
  // preflight did not run them).
  std::chrono::milliseconds preflight_sync{0};
  std::chrono::milliseconds preflight_install{0};
  std::chrono::milliseconds preflight_checks{0};
  std::vector<RunRecord> runs;
  std::vector<std::string> triggered_run_ids;
  bool pool_resumed = false;
  std::optional<bool> pool_paused_at_end;  // nullopt = not attempted
  std::string pool_left_resumed_for;       // other active workers, when that was why
  ExitCode exit_code = ExitCode::kOk;
  std::string message;  // the error that decided the exit code, if any
  // The Prefect server's release, when the worker read it; not in to_json().
  std::optional<std::string> server_version;

  // Runs by final state type, e.g. {"COMPLETED": 3}.
  std::map<std::string, int> runs_by_state() const;
  nlohmann::json to_json() const;
  // "cycle finished: exit 0 (ok) in 12.3 s; runs: 3 COMPLETED; pool "x" paused"
  std::string one_line() const;
};

std::string_view to_string(PhaseStatus status);

// Writes the JSON summary (redacted) atomically: to a temp file, then rename.
// Throws pc::Error(kUsage) when the file cannot be written.
void write_summary_file(const std::filesystem::path& path, const CycleSummary& summary,
                        const Redactor& redactor);

}  // namespace pc
