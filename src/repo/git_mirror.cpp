// The git cache of the code sync: a bare repository per remote under the
// cache directory (PREFECT_CYCLE_CACHE_DIR), fetched from the remote before
// the code directory is cloned or updated from it. On a volume that outlives
// the container, a fresh container's clone then downloads only the commits
// the cache lacks, and the code directory is made from local objects.

#include <git2.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>

#include "common/url.hpp"
#include "repo/git_detail.hpp"
#include "repo/git_ops.hpp"

namespace pc {
namespace {

namespace fs = std::filesystem;
using namespace git_detail;

std::string mirror_in_child(const SyncRequest& req) {
  Library library;
  CredentialContext ctx{req.token};
  std::error_code ec;
  fs::create_directories(req.mirror.parent_path(), ec);
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, req.mirror.c_str()) != 0 &&
      git_repository_init(&raw, req.mirror.c_str(), 1) != 0) {
    return encode(
        {"other", "cannot create the git cache " + req.mirror.string() + ": " + last_git_error()});
  }
  RepoPtr repo(raw);
  git_remote* raw_remote = nullptr;
  if (int rc = git_remote_create_anonymous(&raw_remote, repo.get(), req.url.c_str()); rc != 0) {
    return encode(classify(req.url, "opening", rc, ctx));
  }
  RemotePtr remote(raw_remote);
  git_fetch_options fetch = GIT_FETCH_OPTIONS_INIT;
  fetch.callbacks = callbacks(ctx);
  fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  std::string refspec = "+refs/heads/" + req.branch + ":refs/heads/" + req.branch;
  char* specs[] = {refspec.data()};
  git_strarray refspecs{specs, 1};
  if (int rc = git_remote_fetch(remote.get(), &refspecs, &fetch, nullptr); rc != 0) {
    return encode(classify(req.url, "fetching", rc, ctx));
  }
  // A clone of the mirror checks out its HEAD's branch: the one fetched.
  const std::string head = "refs/heads/" + req.branch;
  if (git_repository_set_head(repo.get(), head.c_str()) != 0) {
    return encode({"other", "cannot point the git cache " + req.mirror.string() + " at " + head +
                                ": " + last_git_error()});
  }
  return "ok\nmirrored\n";
}

}  // namespace

std::filesystem::path git_mirror_path(const fs::path& cache_dir, const std::string& url) {
  // FNV-1a of the URL without credentials: one mirror per remote, the same
  // however the token changes.
  std::uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : strip_userinfo(url)) {
    hash = (hash ^ c) * 1099511628211ULL;
  }
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.git", static_cast<unsigned long long>(hash));
  return cache_dir / "git" / name;
}

void update_git_mirror(const SyncRequest& request, const std::function<bool()>& should_stop) {
  bounded([&] { return mirror_in_child(request); }, request.timeout, request.url,
          "fetching into the git cache " + request.mirror.string() + " from", true, should_stop);
}

}  // namespace pc
