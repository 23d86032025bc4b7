#pragma once
// Internal git operations of the preflight (see git.cpp), exposed for tests
// and for `doctor`. Each runs bounded in time in a child process.

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "repo/preflight.hpp"

namespace pc {

// The host of a git URL, for messages ("github.com", "local path").
std::string git_host(const std::string& url);

// Throws pc::Error(kPreflight) listing up to ten branches and the nearest name
// when `branch` is not among `heads`.
void require_branch(const RemoteHeads& heads, const std::string& branch, const std::string& url);

struct SyncRequest {
  std::string url;
  std::string token;
  std::string branch;
  std::filesystem::path code_dir;
  std::chrono::seconds timeout{60};
};

struct SyncResult {
  bool cloned = false;  // else fetched and reset
  std::string commit;
  int removed_untracked = 0;
};

// Clones `branch` into a missing code_dir, or fetches it and hard-resets an
// existing clone of the same remote to it, removing untracked files. A
// directory that is not a clone of that remote is refused, untouched.
SyncResult sync_code_dir(const SyncRequest& request, const std::function<bool()>& should_stop);

}  // namespace pc
