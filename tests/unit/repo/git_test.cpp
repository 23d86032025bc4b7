#include <catch2/catch.hpp>
#include <chrono>

#include "common/error.hpp"
#include "repo/git_ops.hpp"
#include "repo/preflight.hpp"
#include "repo/repo_fixture.hpp"

using namespace pc;
using namespace pc::testing;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `f`, expects pc::Error(kPreflight), returns its message.
template <typename F>
std::string preflight_failure(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kPreflight);
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  FAIL("expected pc::Error(kPreflight)");
  return "";
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("list_remote_heads lists the branches of a real repository", "[repo]") {
  TempDir tmp;
  BareRepo repo(tmp.path(), {"main", "develop", "feature/login"});

  SECTION("file:// URL") {
    RemoteHeads heads = list_remote_heads(repo.file_url(), "", seconds(20));
    CHECK(sorted(heads.branches) == std::vector<std::string>{"develop", "feature/login", "main"});
    CHECK(heads.default_branch == "main");
  }
  SECTION("local path") {
    RemoteHeads heads = list_remote_heads(repo.path().string(), "", seconds(20));
    CHECK(sorted(heads.branches) == std::vector<std::string>{"develop", "feature/login", "main"});
  }
  SECTION("a missing local repository names the path") {
    const std::string missing = (tmp / "nope.git").string();
    std::string message = preflight_failure([&] { list_remote_heads(missing, "", seconds(20)); });
    CHECK(message == "cannot reach repository " + missing + " (host local path): " + missing +
                         " does not exist");
    message = preflight_failure([&] { list_remote_heads("file://" + missing, "", seconds(20)); });
    CHECK_THAT(message, Catch::Contains(missing + " does not exist"));
  }
  SECTION("a directory that is not a repository gives libgit2's reason") {
    fs::create_directories(tmp / "plain");
    std::string message =
        preflight_failure([&] { list_remote_heads((tmp / "plain").string(), "", seconds(20)); });
    CHECK_THAT(message, Catch::Contains((tmp / "plain").string()));
  }
}

TEST_CASE("require_branch", "[repo]") {
  RemoteHeads heads{{"main", "develop", "release-1.0"}, "main"};

  SECTION("present") {
    CHECK_NOTHROW(require_branch(heads, "develop", "file:///r.git"));
  }

  SECTION("missing: lists the branches and suggests the nearest name") {
    std::string message =
        preflight_failure([&] { require_branch(heads, "mian", "file:///r.git"); });
    CHECK(message ==
          "branch \"mian\" not found in file:///r.git; it has main, develop, release-1.0; did you "
          "mean \"main\"?");
  }

  SECTION("missing and nothing close: no suggestion") {
    std::string message =
        preflight_failure([&] { require_branch(heads, "production", "file:///r.git"); });
    CHECK_THAT(message, Catch::Contains("it has main, develop, release-1.0"));
    CHECK_THAT(message, !Catch::Contains("did you mean"));
  }

  SECTION("lists at most ten branches") {
    RemoteHeads many;
    for (int i = 0; i < 12; ++i) {
      many.branches.push_back("b" + std::to_string(i));
    }
    std::string message = preflight_failure([&] { require_branch(many, "zzz", "/r.git"); });
    CHECK_THAT(message, Catch::Contains("b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, ... (12 in all)"));
    CHECK_THAT(message, !Catch::Contains("b10"));
  }

  SECTION("the password of the URL is not shown") {
    std::string message = preflight_failure(
        [&] { require_branch(heads, "x", "https://bob:hunter22@git.example.com/r.git"); });
    CHECK_THAT(message, Catch::Contains("https://bob:***@git.example.com/r.git"));
    CHECK_THAT(message, !Catch::Contains("hunter22"));
  }

  SECTION("a repository without branches says so") {
    std::string message = preflight_failure([&] { require_branch({}, "main", "/r.git"); });
    CHECK_THAT(message, Catch::Contains("the repository has no branches"));
  }
}

TEST_CASE("list_remote_heads against a server that rejects the credentials", "[repo]") {
  UnauthorizedServer server;
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/r.git";

  SECTION("GITHUB_ACCESS_TOKEN goes as the password of x-access-token, and is never shown") {
    std::string message =
        preflight_failure([&] { list_remote_heads(url, "tok-s3cr3t-123", seconds(20)); });
    CHECK_THAT(message, Catch::Contains("authentication to " + url));
    CHECK_THAT(message, Catch::Contains("tried GITHUB_ACCESS_TOKEN as user x-access-token"));
    CHECK_THAT(message, !Catch::Contains("tok-s3cr3t-123"));
    // base64("x-access-token:tok-s3cr3t-123")
    CHECK_THAT(server.requests(),
               Catch::Contains("Authorization: Basic eC1hY2Nlc3MtdG9rZW46dG9rLXMzY3IzdC0xMjM="));
  }

  SECTION("user:password in the URL") {
    const std::string with_user =
        "http://alice:pa55word@127.0.0.1:" + std::to_string(server.port()) + "/r.git";
    std::string message = preflight_failure([&] { list_remote_heads(with_user, "", seconds(20)); });
    CHECK_THAT(message, Catch::Contains("tried the user:password in PREFECT_WORKER_REPOSITORY"));
    CHECK_THAT(message, Catch::Contains("alice:***@127.0.0.1"));
    CHECK_THAT(message, !Catch::Contains("pa55word"));
  }

  SECTION("no credential at all says how to give one") {
    std::string message = preflight_failure([&] { list_remote_heads(url, "", seconds(20)); });
    CHECK_THAT(message, Catch::Contains("tried no credentials"));
  }
}

TEST_CASE("list_remote_heads is bounded in time", "[repo]") {
  SECTION("a server that accepts and never answers") {
    SilentListener silent;
    const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/r.git";
    auto start = Clock::now();
    std::string message = preflight_failure([&] { list_remote_heads(url, "", seconds(2)); });
    CHECK(seconds_since(start) < 2 + 1.5);
    CHECK(seconds_since(start) >= 1.9);
    CHECK_THAT(message, Catch::Contains("(host 127.0.0.1) did not finish within 2 s"));
    CHECK_THAT(message, Catch::Contains("PREFECT_WORKER_GIT_TIMEOUT_SECONDS"));
  }

  SECTION("a connect that hangs (blackholed)") {
    BlackholeListener blackhole;
    const std::string url = "http://127.0.0.1:" + std::to_string(blackhole.port()) + "/r.git";
    auto start = Clock::now();
    std::string message = preflight_failure([&] { list_remote_heads(url, "", seconds(2)); });
    CHECK(seconds_since(start) < 2 + 1.5);
    CHECK_THAT(message, Catch::Contains("did not finish within 2 s"));
  }

  SECTION("a stop request ends the wait early") {
    SilentListener silent;
    const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/r.git";
    auto start = Clock::now();
    std::string message = preflight_failure([&] {
      list_remote_heads(url, "", seconds(30), [&] { return seconds_since(start) > 0.5; });
    });
    CHECK(seconds_since(start) < 3);
    CHECK_THAT(message, Catch::Contains("stop signal received"));
  }

  SECTION("a refused connection fails at once, naming the host") {
    int port = 0;
    int fd = listen_loopback(1, port);
    ::close(fd);  // nothing listens there now
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/r.git";
    auto start = Clock::now();
    std::string message = preflight_failure([&] { list_remote_heads(url, "", seconds(20)); });
    CHECK(seconds_since(start) < 5);
    CHECK_THAT(message, Catch::Contains("cannot reach repository " + url + " (host 127.0.0.1)"));
  }
}

TEST_CASE("sync_code_dir", "[repo]") {
  TempDir tmp;
  BareRepo repo(tmp.path(), {"main", "develop"});
  const fs::path code = tmp / "code";
  SyncRequest request{repo.file_url(), "", "main", code, seconds(20)};

  SECTION("first sync clones, second sync moves to the new commit and removes untracked files") {
    SyncResult first = sync_code_dir(request, nullptr);
    CHECK(first.cloned);
    CHECK(first.commit.size() == 40);
    CHECK(read_file(code / "README.md") == "hello\n");
    // No staging directory is left beside it.
    int entries = 0;
    for (const auto& e : fs::directory_iterator(tmp.path())) {
      (void)e;
      ++entries;
    }
    CHECK(entries == 3);  // remote.git, work, code

    std::string next = repo.commit_and_push("app/module.py", "VALUE = 2\n", "main");
    write_file(code / "untracked.txt", "left over\n");
    write_file(code / "junk" / "deep.txt", "left over\n");
    write_file(code / "README.md", "edited locally\n");

    SyncResult second = sync_code_dir(request, nullptr);
    CHECK_FALSE(second.cloned);
    CHECK(second.commit == next);
    CHECK(second.removed_untracked == 2);
    CHECK(read_file(code / "app" / "module.py") == "VALUE = 2\n");
    CHECK(read_file(code / "README.md") == "hello\n");
    CHECK_FALSE(fs::exists(code / "untracked.txt"));
    CHECK_FALSE(fs::exists(code / "junk"));
  }

  SECTION("another branch") {
    std::string dev = repo.commit_and_push("dev.txt", "dev\n", "develop");
    request.branch = "develop";
    SyncResult first = sync_code_dir(request, nullptr);
    CHECK(first.commit == dev);
    CHECK(fs::exists(code / "dev.txt"));
  }

  SECTION("switching branch in an existing clone") {
    sync_code_dir(request, nullptr);
    std::string dev = repo.commit_and_push("dev.txt", "dev\n", "develop");
    request.branch = "develop";
    SyncResult second = sync_code_dir(request, nullptr);
    CHECK(second.commit == dev);
    CHECK(fs::exists(code / "dev.txt"));
  }

  SECTION("the same remote as a local path is recognised") {
    sync_code_dir(request, nullptr);
    request.url = repo.path().string() + "/";
    CHECK_NOTHROW(sync_code_dir(request, nullptr));
  }

  SECTION("a missing branch: clear message, nothing created") {
    request.branch = "nope";
    std::string message = preflight_failure([&] { sync_code_dir(request, nullptr); });
    CHECK_THAT(message, Catch::Contains("branch \"nope\" not found in " + repo.file_url()));
    CHECK_FALSE(fs::exists(code));
    int entries = 0;
    for (const auto& e : fs::directory_iterator(tmp.path())) {
      (void)e;
      ++entries;
    }
    CHECK(entries == 2);
  }

  SECTION("a directory that is not a git repository is refused and left untouched") {
    write_file(code / "precious.txt", "do not delete\n");
    std::string message = preflight_failure([&] { sync_code_dir(request, nullptr); });
    CHECK_THAT(message, Catch::Contains("code directory " + code.string() +
                                        " exists but is not a git repository; refusing"));
    CHECK(read_file(code / "precious.txt") == "do not delete\n");
    CHECK_FALSE(fs::exists(code / ".git"));
  }

  SECTION("a clone of a different remote is refused and left untouched") {
    TempDir other_dir;
    BareRepo other(other_dir.path(), {"main"});
    SyncRequest other_request{other.file_url(), "", "main", code, seconds(20)};
    sync_code_dir(other_request, nullptr);
    write_file(code / "local.txt", "mine\n");

    std::string message = preflight_failure([&] { sync_code_dir(request, nullptr); });
    CHECK_THAT(message, Catch::Contains("is a clone of " + other.file_url()));
    CHECK_THAT(message, Catch::Contains("not of " + repo.file_url()));
    CHECK(read_file(code / "local.txt") == "mine\n");
  }

  SECTION("a file in the way is refused") {
    write_file(code, "a file\n");
    std::string message = preflight_failure([&] { sync_code_dir(request, nullptr); });
    CHECK_THAT(message, Catch::Contains("exists but is not a directory"));
    CHECK(read_file(code) == "a file\n");
  }

  SECTION("a clone that times out leaves nothing behind") {
    SilentListener silent;
    request.url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/r.git";
    request.timeout = seconds(1);
    auto start = Clock::now();
    std::string message = preflight_failure([&] { sync_code_dir(request, nullptr); });
    CHECK(seconds_since(start) < 1 + 1.5);
    CHECK_THAT(message, Catch::Contains("did not finish within 1 s"));
    int entries = 0;
    for (const auto& e : fs::directory_iterator(tmp.path())) {
      (void)e;
      ++entries;
    }
    CHECK(entries == 2);
  }
}

TEST_CASE("git_host", "[repo]") {
  CHECK(git_host("https://x-access-token:t@github.com/o/r.git") == "github.com");
  CHECK(git_host("http://127.0.0.1:8080/r.git") == "127.0.0.1");
  CHECK(git_host("git@github.com:o/r.git") == "github.com");
  CHECK(git_host("/srv/git/r.git") == "local path");
}
