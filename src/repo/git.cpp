// libgit2 work of the preflight: list a remote's branches, clone or update a
// code directory. Each public function runs its libgit2 calls in a forked child
// with a deadline (see bounded.hpp) and turns failures into messages that name
// the host, the credential tried (never its value) and libgit2's reason.

#include <git2.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <vector>

#include "common/error.hpp"
#include "common/redact.hpp"
#include "common/spellcheck.hpp"
#include "common/url.hpp"
#include "repo/bounded.hpp"
#include "repo/git_ops.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;

// --- RAII for libgit2 handles ------------------------------------------------

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

std::string last_git_error() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

bool url_has_user_password(const std::string& url) {
  auto userinfo = userinfo_of(url);
  return userinfo && !userinfo->user.empty() && userinfo->password;
}

// What the credentials callback did, so that an authentication failure can say
// which credential was tried (never its value).
struct CredentialContext {
  std::string token;
  int calls = 0;
  bool offered_token = false;
  bool offered_ssh_agent = false;
  bool had_nothing = false;
};

// libgit2 callback. It calls only C functions and must never throw (an
// exception through libgit2's C frames is undefined behaviour).
int on_credentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                   unsigned int allowed_types, void* payload) noexcept {
  auto* ctx = static_cast<CredentialContext*>(payload);
  if (++ctx->calls > 1) {
    // The credential we gave was rejected: asking again would loop.
    git_error_set_str(GIT_ERROR_NET, "the server rejected the credentials");
    return GIT_EAUTH;
  }
  if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0 && !ctx->token.empty()) {
    // GitHub expects a token as the password of the user "x-access-token".
    ctx->offered_token = true;
    return git_credential_userpass_plaintext_new(out, "x-access-token", ctx->token.c_str());
  }
  if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) != 0) {
    ctx->offered_ssh_agent = true;
    return git_credential_ssh_key_from_agent(out, username_from_url ? username_from_url : "git");
  }
  ctx->had_nothing = true;
  git_error_set_str(GIT_ERROR_NET, "the server asks for credentials and none are configured");
  return GIT_EAUTH;
}

git_remote_callbacks callbacks(CredentialContext& ctx) {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = on_credentials;
  cb.payload = &ctx;
  return cb;
}

// The credentials tried, in words: libgit2 presents a URL's user:password
// first, then asks the callback.
std::string credentials_tried(const std::string& url, const CredentialContext& ctx) {
  std::vector<std::string> tried;
  if (url_has_user_password(url)) {
    tried.emplace_back("the user:password in PREFECT_WORKER_REPOSITORY");
  }
  if (ctx.offered_token) {
    tried.emplace_back("GITHUB_ACCESS_TOKEN as user x-access-token");
  }
  if (ctx.offered_ssh_agent) {
    tried.emplace_back("the keys of the SSH agent");
  }
  if (tried.empty()) {
    return "no credentials";
  }
  std::string words;
  for (std::size_t i = 0; i < tried.size(); ++i) {
    words += (i == 0 ? "" : ", then ") + tried[i];
  }
  return words;
}

GitFailure classify(const std::string& url, const std::string& action, int code,
                    const CredentialContext& ctx) {
  std::string reason = last_git_error();
  std::string lower = reason;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (code == GIT_EAUTH || ctx.calls > 1 || lower.find("code: 401") != std::string::npos ||
      lower.find("code: 403") != std::string::npos ||
      lower.find("authentication") != std::string::npos) {
    return {"auth", "authentication to " + redact_url_userinfo(url) + " (host " + git_host(url) +
                        ") failed; tried " + credentials_tried(url, ctx) + ": " + reason};
  }
  if (lower.find("failed to resolve") != std::string::npos ||
      lower.find("failed to connect") != std::string::npos ||
      lower.find("could not connect") != std::string::npos ||
      lower.find("connection refused") != std::string::npos ||
      lower.find("timed out") != std::string::npos ||
      lower.find("could not find repository") != std::string::npos ||
      lower.find("failed to send request") != std::string::npos ||
      lower.find("no such host") != std::string::npos) {
    return {"unreachable", "cannot reach repository " + redact_url_userinfo(url) + " (host " +
                               git_host(url) + "): " + reason};
  }
  return {"other", action + " " + redact_url_userinfo(url) + " failed: " + reason};
}

std::string encode(const GitFailure& f) {
  return "error\n" + f.kind + "\n" + f.message;
}

// Child side of list_remote_heads.
std::string ls_remote_in_child(const std::string& url, const std::string& token) {
  Library library;
  git_remote* raw = nullptr;
  CredentialContext ctx{token};
  if (int rc = git_remote_create_anonymous(&raw, nullptr, url.c_str()); rc != 0) {
    return encode(classify(url, "opening", rc, ctx));
  }
  RemotePtr remote(raw);
  git_remote_callbacks cb = callbacks(ctx);
  if (int rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &cb, nullptr, nullptr);
      rc != 0) {
    return encode(classify(url, "connecting to", rc, ctx));
  }
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if (int rc = git_remote_ls(&heads, &count, remote.get()); rc != 0) {
    return encode(classify(url, "listing", rc, ctx));
  }
  std::ostringstream out;
  out << "ok\n";
  std::string default_branch;
  for (size_t i = 0; i < count; ++i) {
    std::string name = heads[i]->name;
    if (name == "HEAD" && heads[i]->symref_target != nullptr) {
      std::string target = heads[i]->symref_target;
      if (target.rfind("refs/heads/", 0) == 0) {
        default_branch = target.substr(11);
      }
    }
  }
  if (default_branch.empty()) {
    git_buf buf = GIT_BUF_INIT;
    if (git_remote_default_branch(&buf, remote.get()) == 0 && buf.ptr != nullptr) {
      std::string target = buf.ptr;
      if (target.rfind("refs/heads/", 0) == 0) {
        default_branch = target.substr(11);
      }
    }
    git_buf_dispose(&buf);
  }
  out << "default " << default_branch << "\n";
  for (size_t i = 0; i < count; ++i) {
    std::string name = heads[i]->name;
    if (name.rfind("refs/heads/", 0) == 0) {
      out << "branch " << name.substr(11) << "\n";
    }
  }
  git_remote_disconnect(remote.get());
  return out.str();
}

// `sync`: the code sync (whose hints cannot offer to skip the check) rather
// than the repository check.
[[noreturn]] void throw_failure(const std::string& output, const std::string& url,
                                const std::string& action, bool sync) {
  std::istringstream in(output);
  std::string status, kind;
  std::getline(in, status);
  std::getline(in, kind);
  std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Hint failed = sync ? Hint::kSyncFailed : Hint::kRepositoryFailed;
  if (status != "error" || message.empty()) {
    throw preflight_error(action + " " + redact_url_userinfo(url) +
                              " failed: the git helper process ended without a result",
                          failed);
  }
  if (kind == "auth") {
    throw preflight_error(message, Hint::kRepositoryAuth);
  }
  if (kind == "not_a_clone") {
    throw preflight_error(message, Hint::kCodeDir);
  }
  if (kind == "unreachable") {
    throw preflight_error(message, sync ? Hint::kSyncUnreachable : Hint::kRepositoryUnreachable);
  }
  throw preflight_error(message, failed);
}

// The directory of a file:// URL or a local path; nullopt for a network URL.
std::optional<fs::path> local_repository_path(const std::string& url) {
  if (url.rfind("file://", 0) == 0) {
    return fs::path(url.substr(7));
  }
  static const std::regex kScheme(R"(^[a-zA-Z][a-zA-Z0-9+.-]*://)");
  static const std::regex kScp(R"(^(?:[^@/]+@)?[^:/]+:)");
  if (std::regex_search(url, kScheme) || std::regex_search(url, kScp)) {
    return std::nullopt;
  }
  return fs::path(url);
}

BoundedResult bounded(const std::function<std::string()>& work, std::chrono::seconds timeout,
                      const std::string& url, const std::string& action, bool sync,
                      const std::function<bool()>& should_stop) {
  // libgit2 says "unsupported URL protocol" for a local path that does not
  // exist: say what is wrong instead.
  if (auto path = local_repository_path(url); path && !fs::exists(*path)) {
    throw preflight_error("cannot reach repository " + url +
                              " (host local path): " + path->string() + " does not exist",
                          sync ? Hint::kSyncUnreachable : Hint::kRepositoryUnreachable);
  }
  BoundedResult result = run_bounded(
      work, std::chrono::duration_cast<std::chrono::milliseconds>(timeout), should_stop);
  if (result.timed_out) {
    if (should_stop && should_stop()) {
      throw preflight_error(
          action + " " + redact_url_userinfo(url) + " stopped: stop signal received",
          Hint::kStopped);
    }
    throw preflight_error(action + " " + redact_url_userinfo(url) + " (host " + git_host(url) +
                              ") did not finish within " + std::to_string(timeout.count()) +
                              " s (PREFECT_WORKER_GIT_TIMEOUT_SECONDS): no answer from the host, "
                              "or a transfer too slow",
                          sync ? Hint::kSyncTimeout : Hint::kRepositoryTimeout);
  }
  if (result.output.rfind("ok\n", 0) != 0) {
    throw_failure(result.output, url, action, sync);
  }
  return result;
}

// --- code sync (child side) --------------------------------------------------

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
  if (int rc = git_clone(&raw, req.url.c_str(), staging.c_str(), &opts); rc != 0) {
    if (is_missing_branch(req.branch)) {
      return encode(missing_branch(req));
    }
    return encode(classify(req.url, "cloning", rc, ctx));
  }
  RepoPtr repo(raw);
  // Keep credentials out of .git/config: later fetches get them from the
  // configuration again.
  const std::string plain = strip_userinfo(req.url);
  if (plain != req.url && git_remote_set_url(repo.get(), "origin", plain.c_str()) != 0) {
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

  // Fetch through an anonymous remote on the configured URL: it carries the
  // current credentials, which .git/config does not hold.
  git_remote* raw_remote = nullptr;
  if (int rc = git_remote_create_anonymous(&raw_remote, repo.get(), req.url.c_str()); rc != 0) {
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

std::string git_host(const std::string& url) {
  // Without its user-info, so that a password with a raw '@' still leaves a
  // URL curl reads.
  if (auto parsed = parse_url(strip_userinfo(url))) {
    return parsed->host.empty() ? "local path" : parsed->host;  // file:///srv/r.git
  }
  if (url.find("://") != std::string::npos) {
    return "unknown host";
  }
  // git's scp-like syntax, [user@]host:path, is no URL for curl.
  static const std::regex kScp(R"(^(?:[^@/]+@)?([^:/]+):)");
  std::smatch m;
  if (std::regex_search(url, m, kScp)) {
    return m[1].str();
  }
  return "local path";
}

RemoteHeads list_remote_heads(const std::string& url, const std::string& github_token,
                              std::chrono::seconds timeout) {
  return list_remote_heads(url, github_token, timeout, nullptr);
}

RemoteHeads list_remote_heads(const std::string& url, const std::string& github_token,
                              std::chrono::seconds timeout,
                              const std::function<bool()>& should_stop) {
  BoundedResult result = bounded([&] { return ls_remote_in_child(url, github_token); }, timeout,
                                 url, "listing branches of", false, should_stop);
  RemoteHeads heads;
  std::istringstream in(result.output);
  std::string line;
  std::getline(in, line);  // "ok"
  while (std::getline(in, line)) {
    if (line.rfind("branch ", 0) == 0) {
      heads.branches.push_back(line.substr(7));
    } else if (line.rfind("default ", 0) == 0) {
      heads.default_branch = line.substr(8);
    }
  }
  return heads;
}

void require_branch(const RemoteHeads& heads, const std::string& branch, const std::string& url) {
  if (std::find(heads.branches.begin(), heads.branches.end(), branch) != heads.branches.end()) {
    return;
  }
  std::string message = "branch \"" + branch + "\" not found in " + redact_url_userinfo(url);
  if (heads.branches.empty()) {
    message += " (the repository has no branches)";
  } else {
    message += "; it has ";
    for (std::size_t i = 0; i < heads.branches.size() && i < 10; ++i) {
      message += (i == 0 ? "" : ", ") + heads.branches[i];
    }
    if (heads.branches.size() > 10) {
      message += ", ... (" + std::to_string(heads.branches.size()) + " in all)";
    }
    if (auto guess = closest_match(branch, heads.branches)) {
      message += "; did you mean \"" + *guess + "\"?";
    }
  }
  throw preflight_error(message, Hint::kBranchNotFound);
}

SyncResult sync_code_dir(const SyncRequest& request, const std::function<bool()>& should_stop) {
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
