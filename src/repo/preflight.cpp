#include "repo/preflight.hpp"

#include <filesystem>
#include <optional>

#include "common/error.hpp"
#include "process/process.hpp"
#include "repo/git_ops.hpp"
#include "repo/install.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;

// The database check is a quick ping, not a configurable phase.
constexpr std::chrono::seconds kDatabaseTimeout{10};
// SIGTERM -> SIGKILL for the interpreter probe.
constexpr std::chrono::seconds kProbeGrace{5};

using SteadyClock = std::chrono::steady_clock;

std::chrono::milliseconds elapsed(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
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
      [deadline] { return std::chrono::steady_clock::now() > deadline; }, kProbeGrace);
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
  const auto sync_start = SteadyClock::now();
  const fs::path dir = fs::absolute(config.code_dir);
  SyncRequest request{config.repository, config.github_token, config.branch, dir,
                      config.git_timeout};
  fs::path cache_dir = config.cache_dir;
  if (!cache_dir.empty()) {
    if (std::string problem = cache_dir_problem(cache_dir); !problem.empty()) {
      log.warn("PREFECT_CYCLE_CACHE_DIR: " + problem +
               ": no cache this cycle (a Railway volume is root's: set RAILWAY_RUN_UID=0)");
      cache_dir.clear();
    } else {
      request.mirror = git_mirror_path(cache_dir, config.repository);
      log.info("cache " + cache_dir.string() + ": git mirror " + request.mirror.string());
    }
  }
  SyncResult sync = sync_code_dir(request, should_stop);
  report.commit = sync.commit;
  std::string step = std::string(sync.cloned ? "cloned " : "updated ") + dir.string() + " to " +
                     config.branch + " at " + sync.commit;
  if (!sync.cloned) {
    step += " (removed " + std::to_string(sync.removed_untracked) + " untracked path(s))";
  }
  report.steps.push_back(step);
  log.info(step, {{"commit", sync.commit}});
  report.sync_time += elapsed(sync_start);

  const auto install_start = SteadyClock::now();
  std::optional<InstallerCommand> installer;
  auto install = [&](const InstallStep& what, const std::string& label) {
    if (!installer) {
      installer = choose_installer(config);
    }
    report.steps.push_back(install_step(config, cache_dir, *installer, log, what, should_stop)
                               ? "installed " + label
                               : "already installed: " + label);
  };
  if (config.install_requirements) {
    fs::path requirements = dir / config.requirements_file;
    if (fs::exists(requirements)) {
      install({StampKind::kRequirements,
               requirements,
               {"-r", requirements.string()},
               "requirements from " + requirements.string(),
               Hint::kRequirements},
              requirements.string());
    } else {
      log.info("no " + config.requirements_file + " in the code directory: nothing to install");
    }
  } else {
    log.info("PREFECT_WORKER_INSTALL_REQUIREMENTS is off: the requirements are not installed");
  }
  if (config.install_editable) {
    install({StampKind::kEditable,
             dir,
             {"-e", dir.string()},
             "the code directory as an editable package",
             Hint::kEditableInstall},
            dir.string() + " (editable)");
  }
  report.install_time += elapsed(install_start);
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
    const auto start = SteadyClock::now();
    check_repository(config, log, should_stop, report);
    report.sync_time += elapsed(start);
  }
  if (!config.code_dir.empty()) {
    report.ran = true;
    sync_code(config, log, should_stop, report);
  }
  const auto checks_start = SteadyClock::now();
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
  report.checks_time = elapsed(checks_start);
  return report;
}

}  // namespace pc
