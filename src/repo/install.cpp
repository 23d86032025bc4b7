#include "repo/install.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "common/error.hpp"
#include "common/path_search.hpp"
#include "process/process.hpp"

extern char** environ;

namespace pc {
namespace {

namespace fs = std::filesystem;

// SIGTERM -> SIGKILL for an install we stop.
constexpr std::chrono::seconds kInstallGrace{5};

std::string find_uv(const Config& config) {
  // A venv that has uv holds it beside its python: that one first.
  if (config.python.find('/') != std::string::npos) {
    const fs::path beside = fs::path(config.python).parent_path() / "uv";
    if (::access(beside.c_str(), X_OK) == 0) {
      return beside.string();
    }
  }
  const char* path = std::getenv("PATH");
  return search_path("uv", path != nullptr ? path : kDefaultPath).program;
}

std::string join(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& a : argv) {
    command += (command.empty() ? "" : " ") + a;
  }
  return command;
}

std::map<std::string, std::string> our_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (auto eq = entry.find('='); eq != std::string::npos) {
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  return env;
}

void run_installer(const Config& config, const fs::path& cache_dir,
                   const InstallerCommand& installer, const Logger& log, const InstallStep& step,
                   const std::function<bool()>& should_stop) {
  SpawnOptions options;
  options.argv = installer.prefix;
  options.argv.insert(options.argv.end(), step.args.begin(), step.args.end());
  options.cwd = config.code_dir;  // relative paths in a requirements file are the repo's
  if (auto cache = installer_cache_env(cache_dir); !cache.empty()) {
    auto env = our_environment();
    for (auto& [name, value] : cache) {
      env[name] = value;
    }
    options.env = std::move(env);
  }
  const std::string command = join(options.argv);
  log.info("installing " + step.what + ": " + command);
  Logger child_log = log.with({{"source", installer.name}});
  // uv writes its progress to stderr; pip writes its warnings there.
  const bool stderr_is_progress = installer.name == "uv";
  std::string last_error;
  ExitStatus status = run_streaming(
      options,
      [&](std::string_view line, bool is_stderr) {
        if (is_stderr) {
          if (stderr_is_progress) {
            child_log.info(line);
          } else {
            child_log.warn(line);
          }
          // uv ends a failure with "hint: ..." lines; the cause comes before.
          const auto first = line.find_first_not_of(" \t");
          if (first != std::string_view::npos && line.substr(first).rfind("hint:", 0) != 0) {
            last_error = std::string(line.substr(first, 300));
          }
        } else {
          child_log.info(line);
        }
      },
      should_stop, kInstallGrace);
  if (should_stop && should_stop()) {
    throw preflight_error("installing " + step.what + " stopped: stop signal received",
                          Hint::kStopped);
  }
  if (!status.exited() || status.code != 0) {
    throw preflight_error("installing " + step.what + " failed (" + command + ": " +
                              status.describe() + ", " + explain_exit(status) + ")" +
                              (last_error.empty() ? "" : ": " + last_error),
                          step.hint);
  }
}

}  // namespace

InstallerCommand choose_installer(const Config& config) {
  if (config.installer != InstallerChoice::kPip) {
    if (std::string uv = find_uv(config); !uv.empty()) {
      // --compile-bytecode: as pip does, so a flow run's first import reads
      // .pyc files (docs/benchmarks.md has the figures).
      return {"uv", {uv, "pip", "install", "--python", config.python, "--compile-bytecode"}};
    }
    if (config.installer == InstallerChoice::kUv) {
      throw preflight_error("PREFECT_CYCLE_INSTALLER is \"uv\" but no uv was found beside " +
                                config.python +
                                " or on PATH (install it with pip install uv, or set "
                                "PREFECT_CYCLE_INSTALLER=auto or pip)",
                            Hint::kConfigValue);
    }
  }
  return {"pip", {config.python, "-m", "pip", "install", "--disable-pip-version-check"}};
}

std::string cache_dir_problem(const fs::path& cache_dir) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) {
    return "cannot create " + cache_dir.string() + ": " + ec.message();
  }
  if (::access(cache_dir.c_str(), W_OK | X_OK) != 0) {
    return "cannot write " + cache_dir.string() + ": " + std::strerror(errno);
  }
  return "";
}

std::map<std::string, std::string> installer_cache_env(const fs::path& cache_dir) {
  if (cache_dir.empty()) {
    return {};
  }
  return {{"UV_CACHE_DIR", (cache_dir / "uv").string()},
          {"PIP_CACHE_DIR", (cache_dir / "pip").string()}};
}

bool install_step(const Config& config, const fs::path& cache_dir,
                  const InstallerCommand& installer, const Logger& log, const InstallStep& step,
                  const std::function<bool()>& should_stop) {
  std::string why_not;
  auto probe = probe_stamp(config.python, step.kind, step.root, step.args, why_not);
  if (probe && stamp_matches(*probe)) {
    log.info(step.what + " already installed (" + probe->stamp.string() +
             " matches): install skipped");
    return false;
  }
  if (!probe) {
    log.warn(why_not + ": installing without a stamp");
  } else if (std::string error = remove_stamp(*probe); !error.empty()) {
    log.warn(error + ": installing without a stamp");
    probe.reset();
  }
  run_installer(config, cache_dir, installer, log, step, should_stop);
  if (probe) {
    if (std::string error =
            write_stamp(*probe, step.what + " with " + installer.name + " for " + config.python +
                                    " (Python " + probe->python_version + ")");
        !error.empty()) {
      log.warn(error + ": the next cycle installs again");
    }
  }
  return true;
}

}  // namespace pc
