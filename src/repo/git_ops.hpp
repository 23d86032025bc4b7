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

// list_remote_heads() that also gives up (with pc::Error(kPreflight)) as soon
// as should_stop() turns true, e.g. on SIGTERM.
RemoteHeads list_remote_heads(const std::string& url, const std::string& github_token,
                              std::chrono::seconds timeout,
                              const std::function<bool()>& should_stop);

// Throws pc::Error(kPreflight) listing up to ten branches and the nearest name
// when `branch` is not among `heads`.
void require_branch(const RemoteHeads& heads, const std::string& branch, const std::string& url);

struct SyncRequest {
  std::string url;
  std::string token;
  std::string branch;
  std::filesystem::path code_dir;
  std::chrono::seconds timeout{60};
  // A bare repository in the cache directory to fetch through, or empty:
  // the clone or update then reads the mirror, not the remote.
  std::filesystem::path mirror{};
};

struct SyncResult {
  bool cloned = false;  // else fetched and reset
  std::string commit;
  int removed_untracked = 0;
};

// Clones `branch` into a missing code_dir, or fetches it and hard-resets an
// existing clone of the same remote to it, removing untracked files (ignored
// ones stay, as with `git clean -fd`). A path that is not a clone of that
// remote is refused, untouched. A clone is made in a fresh sibling directory
// and renamed into place, so a clone cut short leaves nothing behind; the
// remote URL recorded in .git/config carries no credentials. Throws
// pc::Error(kPreflight); bounded by request.timeout and should_stop().
SyncResult sync_code_dir(const SyncRequest& request, const std::function<bool()>& should_stop);

// The cache's bare repository for `url` (its credentials left out):
// <cache_dir>/git/<hash of the URL>.git.
std::filesystem::path git_mirror_path(const std::filesystem::path& cache_dir,
                                      const std::string& url);

// Fetches `branch` from the remote into request.mirror, creating it when
// missing. Throws pc::Error(kPreflight) as sync_code_dir() does.
void update_git_mirror(const SyncRequest& request, const std::function<bool()>& should_stop);

}  // namespace pc
