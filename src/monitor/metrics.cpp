#include "monitor/metrics.hpp"

#include <cstdio>

#include "prefect/state_type.hpp"

namespace pc {
namespace {

std::string number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.3f", value);
  return buffer;
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) /
         1000.0;
}

double seconds(std::chrono::milliseconds d) {
  return static_cast<double>(d.count()) / 1000.0;
}

class Writer {
 public:
  void family(std::string_view name, std::string_view help) {
    out_ += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
    out_ += "# TYPE " + std::string(name) + " gauge\n";
  }
  void sample(std::string_view name, const std::string& value) {
    out_ += std::string(name) + " " + value + "\n";
  }
  // Label values here are phase and state names: no quotes, backslashes or
  // newlines to escape.
  void sample(std::string_view name, std::string_view label, std::string_view label_value,
              const std::string& value) {
    out_ += std::string(name) + "{" + std::string(label) + "=\"" + std::string(label_value) +
            "\"} " + value + "\n";
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

const std::vector<std::string_view>& cycle_phase_names() {
  static const std::vector<std::string_view> kPhases{"preflight", "resume", "trigger",
                                                     "worker",    "wait",   "pause"};
  return kPhases;
}

std::string render_cycle_metrics(const CycleSummary& summary) {
  Writer w;
  const auto end = summary.started_at + summary.duration;

  w.family("prefect_cycle_last_start_timestamp_seconds",
           "Unix time when the last prefect-cycle run started.");
  w.sample("prefect_cycle_last_start_timestamp_seconds", number(unix_seconds(summary.started_at)));
  w.family("prefect_cycle_last_end_timestamp_seconds",
           "Unix time when the last prefect-cycle run ended (after the pause).");
  w.sample("prefect_cycle_last_end_timestamp_seconds", number(unix_seconds(end)));
  if (summary.exit_code == ExitCode::kOk) {
    w.family("prefect_cycle_last_success_timestamp_seconds",
             "Unix time when the last prefect-cycle run that exited 0 ended.");
    w.sample("prefect_cycle_last_success_timestamp_seconds", number(unix_seconds(end)));
  }
  w.family("prefect_cycle_duration_seconds", "Duration of the last prefect-cycle run.");
  w.sample("prefect_cycle_duration_seconds", number(seconds(summary.duration)));

  w.family("prefect_cycle_phase_duration_seconds",
           "Duration of each phase of the last prefect-cycle run; 0 for a phase that did not "
           "run.");
  for (auto phase : cycle_phase_names()) {
    std::chrono::milliseconds duration{0};
    for (const auto& record : summary.phases) {
      if (record.name == phase) {
        duration = record.duration;
      }
    }
    w.sample("prefect_cycle_phase_duration_seconds", "phase", phase, number(seconds(duration)));
  }

  w.family("prefect_cycle_preflight_duration_seconds",
           "The last prefect-cycle run's preflight by step: sync (repository check and code "
           "sync), install (requirements and editable installs) and checks (database and "
           "interpreter); 0 for what did not run.");
  w.sample("prefect_cycle_preflight_duration_seconds", "step", "sync",
           number(seconds(summary.preflight_sync)));
  w.sample("prefect_cycle_preflight_duration_seconds", "step", "install",
           number(seconds(summary.preflight_install)));
  w.sample("prefect_cycle_preflight_duration_seconds", "step", "checks",
           number(seconds(summary.preflight_checks)));

  w.family("prefect_cycle_flow_runs",
           "Flow runs the last prefect-cycle run accounted for, by final state type.");
  const auto counts = summary.runs_by_state();
  auto count_of = [&counts](std::string_view state) {
    auto it = counts.find(std::string(state));
    return it == counts.end() ? 0 : it->second;
  };
  for (auto type : all_state_types()) {
    w.sample("prefect_cycle_flow_runs", "state", to_string(type),
             std::to_string(count_of(to_string(type))));
  }
  w.sample("prefect_cycle_flow_runs", "state", "UNKNOWN", std::to_string(count_of("UNKNOWN")));

  w.family("prefect_cycle_exit_code",
           "Exit code of the last prefect-cycle run (0 ok, 1 flow runs failed, 2 usage, 3 API, "
           "4 preflight, 5 wait timeout, 130 SIGINT, 143 SIGTERM).");
  w.sample("prefect_cycle_exit_code", std::to_string(to_int(summary.exit_code)));

  // Not attempted: the pool was never resumed (it is as the cycle found it,
  // normally paused) or auto-pause is off (it stays resumed).
  const bool paused = summary.pool_paused_at_end.value_or(!summary.pool_resumed);
  w.family("prefect_cycle_pool_paused",
           "1 when the work pool was paused at the end of the last prefect-cycle run, 0 when it "
           "may still be resumed.");
  w.sample("prefect_cycle_pool_paused", paused ? "1" : "0");
  return w.take();
}

}  // namespace pc
