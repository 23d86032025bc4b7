#include "repo/preflight.hpp"

#include <filesystem>

#include "common/error.hpp"
#include "process/process.hpp"
#include "repo/git_ops.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;

// The database check is a quick ping, not a configurable phase.
constexpr std::chrono::seconds kDatabaseTimeout{10};
// SIGTERM -> SIGKILL for a pip install we stop.
constexpr std::chrono::seconds kPipGrace{5};

void pip_install(const Config& config, const Logger& log, const std::vector<std::string>& args,
                 const std::string& what, Hint hint, const std::function<bool()>& should_stop) {
  SpawnOptions options;
  options.argv = {config.python, "-m", "pip", "install", "--disable-pip-version-check"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.cwd = config.code_dir;  // relative paths in a requirements file are the repo's
  std::string command;
  for (const auto& a : options.argv) {
    command += (command.empty() ? "" : " ") + a;
  }
  log.info("installing " + what + ": " + command);
  Logger pip_log = log.with({{"source", "pip"}});
  std::string last_error;
  ExitStatus status = run_streaming(
      options,
      [&](std::string_view line, bool is_stderr) {
        if (is_stderr) {
          pip_log.warn(line);
          if (line.find_first_not_of(" \t") != std::string_view::npos) {
            last_error = std::string(line.substr(0, 300));
          }
        } else {
          pip_log.info(line);
        }
      },
      should_stop, kPipGrace);
  if (should_stop && should_stop()) {
    throw preflight_error("installing " + what + " stopped: stop signal received", Hint::kStopped);
  }
  if (!status.exited() || status.code != 0) {
    throw preflight_error("installing " + what + " failed (" + command + ": " + status.describe() +
                              ", " + explain_exit(status) + ")" +
                              (last_error.empty() ? "" : ": " + last_error),
                          hint);
  }
}

// Whether the interpreter that will run the flows has Prefect, without
// importing it (that takes seconds; this takes ~50 ms): find_spec only
// locates the package, importlib.metadata reads its version.
constexpr const char* kPrefectProbe =
    "import sys, importlib.util\n"
    "if importlib.util.find_spec('prefect') is None:\n"
    "    print('No module named prefect'); sys.exit(3)\n"
    "from importlib import metadata\n"
    "for dist in ('prefect', 'prefect-client'):\n"
    "    try:\n"
    "        print(metadata.version(dist)); break\n"
    "    except metadata.PackageNotFoundError:\n"
    "        pass\n"
    "else:\n"
    "    print('unknown')\n";
constexpr std::chrono::seconds kProbeTimeout{30};

void check_flow_python(const Config& config, const Logger& log, PreflightReport& report) {
  SpawnOptions options;
  options.argv = {config.python, "-c", kPrefectProbe};
  std::string last_line;
  const auto deadline = std::chrono::steady_clock::now() + kProbeTimeout;
  ExitStatus status = run_streaming(
      options,
      [&last_line](std::string_view line, bool) {
        if (line.find_first_not_of(" \t") != std::string_view::npos) {
          last_line = std::string(line.substr(0, 300));
        }
      },
      [deadline] { return std::chrono::steady_clock::now() > deadline; }, kPipGrace);
  if (status.exited() && status.code == 127) {
    throw preflight_error(
        "PREFECT_WORKER_PYTHON: \"" + config.python + "\" not found (no such file, or not on PATH)",
        Hint::kPython);
  }
  if (!status.exited() || status.code != 0) {
    throw preflight_error("PREFECT_WORKER_PYTHON: \"" + config.python +
                              "\" cannot run flow runs (" + status.describe() +
                              (last_line.empty() ? "" : ": " + last_line) + ")",
                          Hint::kPython);
  }
  report.steps.push_back("flow interpreter " + config.python + " has Prefect " + last_line);
  log.info("flow runs will use " + config.python + " (Prefect " + last_line + ")");
}

void check_repository(const Config& config, const Logger& log,
                      const std::function<bool()>& should_stop, PreflightReport& report) {
  log.info("checking repository " + config.repository + " for branch \"" + config.branch + "\"");
  RemoteHeads heads =
      list_remote_heads(config.repository, config.github_token, config.git_timeout, should_stop);
  require_branch(heads, config.branch, config.repository);
  report.steps.push_back("repository reachable, branch \"" + config.branch + "\" present");
  log.info("repository reachable; branch \"" + config.branch + "\" present (" +
           std::to_string(heads.branches.size()) + " branches)");
}

void sync_code(const Config& config, const Logger& log, const std::function<bool()>& should_stop,
               PreflightReport& report) {
  if (config.repository.empty()) {
    throw usage_error("PREFECT_WORKER_CODE_DIR is set (to " + config.code_dir.string() +
                          ") but PREFECT_WORKER_REPOSITORY is not: there is nothing to sync",
                      Hint::kConfigCodeDirWithoutRepository);
  }
  const fs::path dir = fs::absolute(config.code_dir);
  SyncRequest request{config.repository, config.github_token, config.branch, dir,
                      config.git_timeout};
  SyncResult sync = sync_code_dir(request, should_stop);
  report.commit = sync.commit;
  std::string step = std::string(sync.cloned ? "cloned " : "updated ") + dir.string() + " to " +
                     config.branch + " at " + sync.commit;
  if (!sync.cloned) {
    step += " (removed " + std::to_string(sync.removed_untracked) + " untracked path(s))";
  }
  report.steps.push_back(step);
  log.info(step, {{"commit", sync.commit}});

  if (config.install_requirements) {
    fs::path requirements = dir / config.requirements_file;
    if (fs::exists(requirements)) {
      pip_install(config, log, {"-r", requirements.string()},
                  "requirements from " + requirements.string(), Hint::kRequirements, should_stop);
      report.steps.push_back("installed " + requirements.string());
    } else {
      log.info("no " + config.requirements_file + " in the code directory: nothing to install");
    }
  }
  if (config.install_editable) {
    pip_install(config, log, {"-e", dir.string()}, "the code directory as an editable package",
                Hint::kEditableInstall, should_stop);
    report.steps.push_back("installed " + dir.string() + " (editable)");
  }
  report.working_dir = dir;
  // child_environment() puts this in front of an existing PYTHONPATH.
  report.flow_env["PYTHONPATH"] = dir.string();
}

}  // namespace

PreflightReport run_preflight(const Config& config, const Logger& log,
                              const std::function<bool()>& should_stop) {
  PreflightReport report;

  if (config.database_url_from_public) {
    log.info("DATABASE_URL is not set: the flow runs get it from DATABASE_PUBLIC_URL");
  }
  if (!config.database_url.empty()) {
    report.flow_env["DATABASE_URL"] = config.database_url;
  }

  if (!config.repository.empty() && config.verify_repository) {
    report.ran = true;
    check_repository(config, log, should_stop, report);
  }
  if (!config.code_dir.empty()) {
    report.ran = true;
    sync_code(config, log, should_stop, report);
  }
  if (config.check_database) {
    report.ran = true;
    if (config.database_url.empty()) {
      throw preflight_error(
          "PREFECT_WORKER_CHECK_DATABASE is on but neither DATABASE_URL nor DATABASE_PUBLIC_URL "
          "is set",
          Hint::kDatabaseMissing);
    }
    log.info("checking the database " + describe_database(config.database_url));
    check_database(config.database_url, kDatabaseTimeout);
    report.steps.emplace_back("database answered SELECT 1");
    log.info("database answered SELECT 1");
  }
  // Last: a requirements file may have installed Prefect.
  check_flow_python(config, log, report);
  return report;
}

}  // namespace pc
