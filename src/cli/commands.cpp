#include "cli/commands.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/api_stack.hpp"
#include "cli/doctor.hpp"
#include "cli/dry_run.hpp"
#include "common/error.hpp"
#include "common/host.hpp"
#include "config/child_env.hpp"
#include "cycle/cycle.hpp"
#include "cycle/signals.hpp"
#include "monitor/cycle_event.hpp"
#include "monitor/monitor.hpp"
#include "repo/preflight.hpp"
#include "worker/cli_worker.hpp"
#include "worker/worker.hpp"

namespace pc {
namespace {

std::string origin_name(const ConfigEntry& entry) {
  switch (entry.origin) {
    case Origin::kDefault:
      return entry.source.empty() ? "default" : "default: " + entry.source;
    case Origin::kEnv:
      return "env " + entry.source;
    case Origin::kFlag:
      return "flag " + entry.source;
  }
  return "default";
}

}  // namespace

void print_config(const LoadedConfig& loaded, std::ostream& out) {
  std::size_t width = 0;
  for (const auto& entry : loaded.entries) {
    width = std::max(width, entry.variable.size());
  }
  for (const auto& entry : loaded.entries) {
    out << std::left << std::setw(static_cast<int>(width)) << entry.variable << "  "
        << (entry.value.empty() ? "(unset)" : entry.value) << "  [" << origin_name(entry) << "]\n";
  }
  for (const auto& warning : loaded.config.warnings) {
    out << "warning: " << loaded.config.redactor->redact(warning) << "\n";
  }
}

ExitCode doctor_command(const FlagValues& flags, bool json, std::ostream& out) {
  std::optional<LoadedConfig> loaded;
  DoctorReport report;
  try {
    loaded = load_config(process_environment(), flags);
    report = run_doctor(loaded->config);
  } catch (const Error& e) {
    report = doctor_config_failure(redact_url_userinfo(e.message()), hint_text(e.hint()));
  }
  std::ostringstream text;
  if (json) {
    report.print_json(text);
  } else {
    report.print_text(text);
  }
  out << (loaded ? loaded->config.redactor->redact(text.str()) : text.str());
  return report.exit_code();
}

ExitCode run_command(const Config& config) {
  StopSignal::install();
  // Informational lines on stdout, problems on stderr (see LogStreams); the
  // dry run prints its plan on stdout, so its log lines stay on stderr.
  Logger log(config.log_level, config.log_format, config.redactor,
             config.dry_run ? LogStreams::kStderr : LogStreams::kSplitByLevel);

  ApiStack stack(config, log);
  if (config.dry_run) {
    std::ostringstream plan;
    ExitCode code = print_plan(config, stack.client(), plan);
    std::cout << config.redactor->redact(plan.str());
    return code;
  }

  const Environment base_env = process_environment();
  CycleDeps deps{
      stack.client(),
      stack.clock(),
      stack.sleeper(),
      [&config](const Logger& plog) {
        return run_preflight(config, plog, [] { return StopSignal::stop_requested(); });
      },
      [&config, &base_env, &stack](const WorkPool& pool, const PreflightReport& preflight,
                                   WorkerHooks hooks) {
        Environment env = child_environment(config, base_env, preflight.flow_env);
        std::unique_ptr<WorkerPhase> worker;
        if (config.worker_type == "process") {
          NativeWorkerOptions options;
          options.child_env = std::move(env);
          options.default_working_dir = preflight.working_dir;
          options.hostname = host_name();
          options.hooks = std::move(hooks);
          worker = std::make_unique<NativeWorker>(config, stack.client(), stack.sleeper(), pool,
                                                  std::move(options));
        } else {
          worker =
              std::make_unique<CliWorker>(config, std::move(env), std::move(hooks.stop_reason));
        }
        return worker;
      },
      [] { return StopSignal::first(); },
      [] { return StopSignal::hurry(); },
      // The pool is paused: the event for Prefect's automations (bounded)
      // goes before the last line, which carries the outcome.
      [&config, &stack, &log](const CycleSummary& ended) {
        send_cycle_event(config, stack.client(), ended, log);
      },
  };

  MonitorStack monitoring(config, log);
  monitoring.monitor().cycle_started();
  CycleSummary summary;
  ExitCode code = run_cycle(config, log, deps, summary);
  // The last line carries the outcome: an error when the exit code is not 0,
  // so that a log viewer's level filter finds every failed cycle.
  log.log(code == ExitCode::kOk ? LogLevel::kInfo : LogLevel::kError, summary.one_line(),
          {{"exit_code", to_int(code)}});
  if (!config.summary_file.empty()) {
    try {
      write_summary_file(config.summary_file, summary, *config.redactor);
    } catch (const Error& e) {
      log.error(e.what());
    }
  }
  // run_cycle returned: the pool is paused, monitoring cannot delay that.
  monitoring.monitor().cycle_finished(summary);
  return code;
}

}  // namespace pc
