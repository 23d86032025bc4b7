#pragma once
// The installs of the preflight: the requirements file and the editable
// project, into the flow interpreter's environment, with uv when it is there
// (`uv pip install --python <interpreter>`), else pip (PREFECT_CYCLE_INSTALLER
// chooses), skipped when the install stamp (install_stamp.hpp) says the same
// inputs are installed already. The installer's output is streamed into the
// log, its lines tagged source=uv or source=pip.

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/hint.hpp"
#include "config/config.hpp"
#include "log/logger.hpp"
#include "repo/install_stamp.hpp"

namespace pc {

struct InstallStep {
  StampKind kind = StampKind::kRequirements;
  std::filesystem::path root;     // the requirements file, or the project directory
  std::vector<std::string> args;  // after "install": {"-r", file} or {"-e", dir}
  std::string what;               // "requirements from /code/requirements.txt"
  Hint hint = Hint::kRequirements;
};

struct InstallerCommand {
  std::string name;                 // "uv" or "pip"
  std::vector<std::string> prefix;  // the command up to and including its options
};

// The installer PREFECT_CYCLE_INSTALLER asks for: uv (beside the
// interpreter, else on PATH) for auto when it is found, else pip. Throws
// pc::Error(kPreflight) for `uv` when there is none.
InstallerCommand choose_installer(const Config& config);

// Why the cache directory cannot be used (it cannot be created or written,
// e.g. a volume mounted for root only), or "" when it can. An unusable
// cache is left out with a warning: the cycle works without it.
std::string cache_dir_problem(const std::filesystem::path& cache_dir);

// The installer's cache for the child (UV_CACHE_DIR, PIP_CACHE_DIR) under
// the cache directory; nothing when there is none.
std::map<std::string, std::string> installer_cache_env(const std::filesystem::path& cache_dir);

// Installs, or skips and says so in one line when the stamp matches.
// `cache_dir` (empty = none) holds the installer's cache. Returns true when
// it installed. Throws pc::Error(kPreflight) with step.hint when the
// installer fails, naming the command and its last error line.
bool install_step(const Config& config, const std::filesystem::path& cache_dir,
                  const InstallerCommand& installer, const Logger& log, const InstallStep& step,
                  const std::function<bool()>& should_stop);

}  // namespace pc
