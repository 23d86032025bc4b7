#pragma once
// The preflight phase: every check that can fail the cycle, run before the pool
// is resumed -- the repository is reachable and has the branch, the code
// directory is synced to it, requirements are installed, the database answers.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "db/database.hpp"
#include "log/logger.hpp"

namespace pc {

struct PreflightReport {
  bool ran = false;    // false when nothing was configured
  std::string commit;  // synced commit id, empty without a sync
  // Environment for the flow runs: PYTHONPATH (code dir first), DATABASE_URL.
  std::map<std::string, std::string> flow_env;
  std::filesystem::path working_dir;  // default working dir for flow runs, or empty
  std::vector<std::string> steps;     // what was done, for the log and summary
  // Where the preflight's time went: the repository check and the code sync;
  // the installs (or their skipping); the database check and the
  // interpreter probe.
  std::chrono::milliseconds sync_time{0};
  std::chrono::milliseconds install_time{0};
  std::chrono::milliseconds checks_time{0};
};

// Throws pc::Error(kPreflight) with a clear message free of secrets.
PreflightReport run_preflight(const Config& config, const Logger& log,
                              const std::function<bool()>& should_stop);

struct RemoteHeads {
  std::vector<std::string> branches;
  std::string default_branch;
};

// Lists the branches of a remote (file://, local path, http(s), ssh) within
// `timeout`. Throws pc::Error(kPreflight) naming the host and the problem.
RemoteHeads list_remote_heads(const std::string& url, const std::string& github_token,
                              std::chrono::seconds timeout);

// check_database(database_url, timeout) lives in db/database.hpp (included).

}  // namespace pc
