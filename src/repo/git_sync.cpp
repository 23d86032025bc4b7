// Code sync of the preflight: clone a branch into a code directory, or fetch
// it and hard-reset an existing clone of the same remote. The libgit2 work
// runs in a forked child with a deadline (git_detail::bounded).

#include <git2.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "common/error.hpp"
#include "common/redact.hpp"
#include "common/url.hpp"
#include "repo/git_detail.hpp"
#include "repo/git_ops.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;
using namespace git_detail;

// The same remote written two ways (file:// or a path, a trailing slash or
// not, credentials or not) compares equal.
std::string normalize_url(std::string url) {
  url = strip_userinfo(url);
  while (url.size() > 1 && url.back() == '/') {
    url.pop_back();
  }
  if (url.rfind("file://", 0) == 0) {
    url = url.substr(7);
  }
  if (!url.empty() && url.front() == '/') {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(url, ec);
    if (!ec) {
      url = canonical.string();
    }
  }
  return url;
}

std::vector<std::string> untracked_paths(git_repository* repo) {
  git_status_options opts = GIT_STATUS_OPTIONS_INIT;
  opts.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
  // Untracked directories are reported whole; ignored files are kept, as
  // `git clean -fd` keeps them (a virtualenv inside the checkout survives).
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED;
  git_status_list* raw = nullptr;
  std::vector<std::string> paths;
  if (git_status_list_new(&raw, repo, &opts) != 0) {
    return paths;
  }
  StatusPtr list(raw);
  for (size_t i = 0; i < git_status_list_entrycount(list.get()); ++i) {
    const git_status_entry* e = git_status_byindex(list.get(), i);
    if ((e->status & GIT_STATUS_WT_NEW) != 0 && e->index_to_workdir != nullptr) {
      paths.emplace_back(e->index_to_workdir->new_file.path);
    }
  }
  return paths;
}

std::string head_commit(git_repository* repo) {
  git_oid oid;
  if (git_reference_name_to_id(&oid, repo, "HEAD") != 0) {
    return "";
  }
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof(hex), &oid);
  return hex;
}

bool is_missing_branch(const std::string& branch) {
  std::string reason = last_git_error();
  return reason.find("refs/remotes/origin/" + branch) != std::string::npos ||
         reason.find("refs/heads/" + branch) != std::string::npos;
}

GitFailure missing_branch(const SyncRequest& req) {
  return {"branch", "branch \"" + req.branch + "\" not found in " + redact_url_userinfo(req.url) +
                        " (PREFECT_WORKER_BRANCH)"};
}

// Where the objects come from: the cache's mirror when there is one (the
// parent has just fetched it), else the remote.
std::string source_of(const SyncRequest& req) {
  return req.mirror.empty() ? req.url : req.mirror.string();
}

// Clones into `staging`, an empty directory the parent made; the parent
// renames it into place on success, so a clone cut short by the deadline
// never leaves a half-made code directory behind.
std::string clone_in_child(const SyncRequest& req, const fs::path& staging) {
  Library library;
  CredentialContext ctx{req.token};
  git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
  opts.checkout_branch = req.branch.c_str();
  opts.fetch_opts.callbacks = callbacks(ctx);
  opts.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  git_repository* raw = nullptr;
  const std::string source = source_of(req);
  if (int rc = git_clone(&raw, source.c_str(), staging.c_str(), &opts); rc != 0) {
    if (is_missing_branch(req.branch)) {
      return encode(missing_branch(req));
    }
    return encode(classify(req.url, "cloning", rc, ctx));
  }
  RepoPtr repo(raw);
  // Keep credentials out of .git/config: later fetches get them from the
  // configuration again. A clone of the mirror records the remote all the
  // same, so that the checkout is known as a clone of it.
  const std::string plain = strip_userinfo(req.url);
  if (plain != source && git_remote_set_url(repo.get(), "origin", plain.c_str()) != 0) {
    return encode(
        {"other", "cannot record the remote URL in " + staging.string() + ": " + last_git_error()});
  }
  return "ok\ncloned\ncommit " + head_commit(repo.get()) + "\n";
}

std::string update_in_child(const SyncRequest& req) {
  Library library;
  CredentialContext ctx{req.token};
  const fs::path& dir = req.code_dir;
  const std::string refusal = "; refusing to touch it";
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    return encode({"not_a_clone", "code directory " + dir.string() +
                                      " exists but is not a git repository" + refusal});
  }
  RepoPtr repo(raw);
  if (git_repository_is_bare(repo.get())) {
    return encode(
        {"not_a_clone", "code directory " + dir.string() + " is a bare git repository" + refusal});
  }
  git_remote* raw_origin = nullptr;
  if (git_remote_lookup(&raw_origin, repo.get(), "origin") != 0) {
    return encode({"not_a_clone", "code directory " + dir.string() +
                                      " is a git repository without an \"origin\" remote" +
                                      refusal});
  }
  RemotePtr origin(raw_origin);
  const char* origin_url = git_remote_url(origin.get());
  if (origin_url == nullptr || normalize_url(origin_url) != normalize_url(req.url)) {
    return encode({"not_a_clone", "code directory " + dir.string() + " is a clone of " +
                                      redact_url_userinfo(origin_url ? origin_url : "?") +
                                      ", not of " + redact_url_userinfo(req.url) + refusal});
  }

  // Fetch through an anonymous remote on the configured URL (or the mirror):
  // it carries the current credentials, which .git/config does not hold.
  git_remote* raw_remote = nullptr;
  const std::string source = source_of(req);
  if (int rc = git_remote_create_anonymous(&raw_remote, repo.get(), source.c_str()); rc != 0) {
    return encode(classify(req.url, "opening", rc, ctx));
  }
  RemotePtr remote(raw_remote);
  git_fetch_options fetch = GIT_FETCH_OPTIONS_INIT;
  fetch.callbacks = callbacks(ctx);
  fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  const std::string remote_ref = "refs/remotes/origin/" + req.branch;
  std::string refspec = "+refs/heads/" + req.branch + ":" + remote_ref;
  char* specs[] = {refspec.data()};
  git_strarray refspecs{specs, 1};
  if (int rc = git_remote_fetch(remote.get(), &refspecs, &fetch, nullptr); rc != 0) {
    if (is_missing_branch(req.branch)) {
      return encode(missing_branch(req));
    }
    return encode(classify(req.url, "fetching", rc, ctx));
  }
  git_object* raw_target = nullptr;
  if (git_revparse_single(&raw_target, repo.get(), remote_ref.c_str()) != 0) {
    return encode(missing_branch(req));
  }
  ObjectPtr target(raw_target);
  git_object* raw_commit = nullptr;
  if (git_object_peel(&raw_commit, target.get(), GIT_OBJECT_COMMIT) != 0) {
    return encode({"other", "cannot resolve " + remote_ref + ": " + last_git_error()});
  }
  ObjectPtr commit(raw_commit);

  // Point the local branch at the fetched commit and check it out by force:
  // like `git checkout -B <branch> origin/<branch> && git reset --hard`.
  git_reference* raw_branch = nullptr;
  if (git_branch_create(&raw_branch, repo.get(), req.branch.c_str(),
                        reinterpret_cast<git_commit*>(commit.get()), 1) != 0) {
    raw_branch = nullptr;  // it is the checked-out branch: the reset below moves it
  }
  ReferencePtr branch(raw_branch);
  const std::string head_ref = "refs/heads/" + req.branch;
  if (git_repository_set_head(repo.get(), head_ref.c_str()) != 0 ||
      git_reset(repo.get(), commit.get(), GIT_RESET_HARD, nullptr) != 0) {
    return encode({"other", "cannot reset " + dir.string() + " to origin/" + req.branch + ": " +
                                last_git_error()});
  }
  int removed = 0;
  for (const auto& path : untracked_paths(repo.get())) {
    std::error_code ec;
    fs::remove_all(dir / path, ec);  // a symlink is removed, not what it points to
    if (!ec) {
      ++removed;
    }
  }
  return "ok\nupdated\ncommit " + head_commit(repo.get()) + "\nremoved " + std::to_string(removed) +
         "\n";
}

SyncResult parse_sync(const std::string& output) {
  SyncResult sync;
  std::istringstream in(output);
  std::string line;
  std::getline(in, line);  // ok
  std::getline(in, line);
  sync.cloned = line == "cloned";
  while (std::getline(in, line)) {
    if (line.rfind("commit ", 0) == 0) {
      sync.commit = line.substr(7);
    } else if (line.rfind("removed ", 0) == 0) {
      sync.removed_untracked = std::stoi(line.substr(8));
    }
  }
  return sync;
}

// A fresh, empty directory beside `dir`, made by us (mkdtemp), to clone into.
fs::path make_staging_dir(const fs::path& dir) {
  fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    throw preflight_error(
        "cannot create " + parent.string() + " for the code directory: " + ec.message(),
        Hint::kCodeDir);
  }
  std::string pattern = (parent / ("." + dir.filename().string() + ".clone-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw preflight_error(
        "cannot create a directory beside " + dir.string() + ": " + std::strerror(errno),
        Hint::kCodeDir);
  }
  return pattern;
}

// Removes the staging directory on every path out of a clone but success.
class StagingGuard {
 public:
  explicit StagingGuard(fs::path path) : path_(std::move(path)) {}
  StagingGuard(const StagingGuard&) = delete;
  StagingGuard& operator=(const StagingGuard&) = delete;
  ~StagingGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

}  // namespace

SyncResult sync_code_dir(const SyncRequest& request, const std::function<bool()>& should_stop) {
  if (!request.mirror.empty()) {
    update_git_mirror(request, should_stop);
  }
  const fs::path& dir = request.code_dir;
  std::error_code ec;
  const auto status = fs::symlink_status(dir, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(fs::status(dir, ec))) {
      throw preflight_error(
          "code directory " + dir.string() + " exists but is not a directory; refusing to touch it",
          Hint::kCodeDir);
    }
    try {
      return parse_sync(bounded([&] { return update_in_child(request); }, request.timeout,
                                request.url, "updating " + dir.string() + " from", true,
                                should_stop)
                            .output);
    } catch (const Error&) {
      // A helper killed in the middle of a checkout leaves its index lock
      // behind, which would fail every later sync. The helper is gone, so the
      // lock is stale.
      fs::remove(dir / ".git" / "index.lock", ec);
      throw;
    }
  }
  StagingGuard staging(make_staging_dir(dir));
  const fs::path staging_path = staging.path();
  SyncResult sync =
      parse_sync(bounded([&] { return clone_in_child(request, staging_path); }, request.timeout,
                         request.url, "cloning into " + dir.string() + " from", true, should_stop)
                     .output);
  fs::rename(staging_path, dir, ec);
  if (ec) {
    throw preflight_error("cannot move the clone into " + dir.string() + ": " + ec.message(),
                          Hint::kCodeDir);
  }
  staging.release();
  return sync;
}

}  // namespace pc
