// libgit2 work of the preflight: list a remote's branches (the code sync is
// git_sync.cpp). Each public function runs its libgit2 calls in a forked child
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
#include "common/text.hpp"
#include "common/url.hpp"
#include "repo/bounded.hpp"
#include "repo/git_detail.hpp"
#include "repo/git_ops.hpp"

namespace pc {

namespace fs = std::filesystem;
using namespace git_detail;

namespace git_detail {

std::string last_git_error() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

}  // namespace git_detail

namespace {

bool url_has_user_password(const std::string& url) {
  auto userinfo = userinfo_of(url);
  return userinfo && !userinfo->user.empty() && userinfo->password;
}

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

}  // namespace

namespace git_detail {

git_remote_callbacks callbacks(CredentialContext& ctx) {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = on_credentials;
  cb.payload = &ctx;
  return cb;
}

}  // namespace git_detail

namespace {

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

}  // namespace

namespace git_detail {

GitFailure classify(const std::string& url, const std::string& action, int code,
                    const CredentialContext& ctx) {
  std::string reason = last_git_error();
  const std::string lower = ascii_lower(reason);
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

}  // namespace git_detail

namespace {

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

}  // namespace

namespace git_detail {

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

}  // namespace git_detail

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

}  // namespace pc
