#pragma once
// What git.cpp (remote listing, the bounded child, failure messages) and
// git_sync.cpp (clone, fetch, reset) share: libgit2 handles, the credentials
// callback's context, and the child-to-parent failure encoding. Internal to
// src/repo/.

#include <git2.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "repo/bounded.hpp"

namespace pc::git_detail {

// RAII for libgit2 handles.
struct RemoteDeleter {
  void operator()(git_remote* r) const { git_remote_free(r); }
};
struct RepoDeleter {
  void operator()(git_repository* r) const { git_repository_free(r); }
};
struct ObjectDeleter {
  void operator()(git_object* o) const { git_object_free(o); }
};
struct ReferenceDeleter {
  void operator()(git_reference* r) const { git_reference_free(r); }
};
struct StatusDeleter {
  void operator()(git_status_list* s) const { git_status_list_free(s); }
};
using RemotePtr = std::unique_ptr<git_remote, RemoteDeleter>;
using RepoPtr = std::unique_ptr<git_repository, RepoDeleter>;
using ObjectPtr = std::unique_ptr<git_object, ObjectDeleter>;
using ReferencePtr = std::unique_ptr<git_reference, ReferenceDeleter>;
using StatusPtr = std::unique_ptr<git_status_list, StatusDeleter>;

struct Library {
  Library() { git_libgit2_init(); }
  ~Library() { git_libgit2_shutdown(); }
};

// Thrown inside the child only; carried back as text.
struct GitFailure {
  std::string kind;  // "auth", "unreachable", "other", "not_a_clone", ...
  std::string message;
};

// What the credentials callback did, so that an authentication failure can say
// which credential was tried (never its value).
struct CredentialContext {
  std::string token;
  int calls = 0;
  bool offered_token = false;
  bool offered_ssh_agent = false;
  bool had_nothing = false;
};

// libgit2's last error message, or "unknown libgit2 error".
std::string last_git_error();

// Remote callbacks that answer credential requests from `ctx` (a URL's
// user:password, then GITHUB_ACCESS_TOKEN, then the SSH agent). `ctx` must
// outlive the remote operation.
git_remote_callbacks callbacks(CredentialContext& ctx);

// A libgit2 failure of `action` on `url` (returned `code`) as a message that
// names the host and the credentials tried; kind "auth", "unreachable" or "other".
GitFailure classify(const std::string& url, const std::string& action, int code,
                    const CredentialContext& ctx);

// A failure as the child's output: "error\n<kind>\n<message>".
std::string encode(const GitFailure& f);

// Runs `work` in a forked child (run_bounded) and turns a timeout, a stop or
// an "error" output into pc::Error(kPreflight) for `action` on `url`; `sync`
// picks the code sync's hints over the repository check's. Returns the
// child's output, which begins with "ok\n".
BoundedResult bounded(const std::function<std::string()>& work, std::chrono::seconds timeout,
                      const std::string& url, const std::string& action, bool sync,
                      const std::function<bool()>& should_stop);

}  // namespace pc::git_detail
