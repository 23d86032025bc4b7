#include "process/process.hpp"

#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace pc;
using std::chrono::milliseconds;

namespace {

struct Output {
  std::vector<std::string> out;
  std::vector<std::string> err;
  std::size_t bytes = 0;
  std::size_t longest = 0;
  LineCallback callback() {
    return [this](std::string_view line, bool is_stderr) {
      bytes += line.size();
      longest = std::max(longest, line.size());
      if (out.size() + err.size() < 1000) {
        (is_stderr ? err : out).emplace_back(line);
      }
    };
  }
};

ExitStatus run_sh(
    const std::string& script, Output& output,
    const std::function<bool()>& stop = [] { return false; },
    milliseconds grace = milliseconds(2000)) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return run_streaming(options, output.callback(), stop, grace);
}

// Running, not a zombie (an orphan's zombie may wait for a reaper here).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) {
    return false;
  }
  return state != "Z" && state != "X";
}

}  // namespace

TEST_CASE("process: exit codes, signals and their meaning", "[process]") {
  Output o;
  CHECK(run_sh("exit 0", o).code == 0);
  auto three = run_sh("exit 3", o);
  CHECK(three.exited());
  CHECK(three.code == 3);
  CHECK(three.describe() == "exit code 3");
  auto killed = run_sh("kill -9 $$", o);
  CHECK_FALSE(killed.exited());
  CHECK(killed.signal == SIGKILL);
  CHECK(killed.describe() == "killed by signal 9 (SIGKILL)");
  CHECK(explain_exit(killed) == "killed (SIGKILL; often the out-of-memory killer)");
  CHECK(explain_exit(ExitStatus{137, 0}) == "killed (SIGKILL; often the out-of-memory killer)");
  CHECK(explain_exit(ExitStatus{127, 0}) == "command not found");
  CHECK(explain_exit(ExitStatus{126, 0}) == "command found but not executable");
  CHECK(explain_exit(ExitStatus{1, 0}) == "general error");
  CHECK(explain_exit(ExitStatus{143, 0}) == "terminated (SIGTERM)");
}

TEST_CASE("process: stdout and stderr lines, partial last line", "[process]") {
  Output o;
  run_sh("echo one; echo two >&2; printf 'no newline'", o);
  CHECK(o.out == std::vector<std::string>{"one", "no newline"});
  CHECK(o.err == std::vector<std::string>{"two"});
}

TEST_CASE("process: a command that does not exist is 127 with the reason", "[process]") {
  SpawnOptions options;
  options.argv = {"/nonexistent/prefect-cycle-test-binary"};
  Output o;
  auto status = run_streaming(
      options, o.callback(), [] { return false; }, milliseconds(100));
  CHECK(status.code == 127);
  REQUIRE(o.err.size() == 1);
  CHECK(o.err[0] ==
        "cannot start \"/nonexistent/prefect-cycle-test-binary\": No such file or directory");
}

TEST_CASE("process: environment and working directory are honoured", "[process]") {
  auto dir = std::filesystem::temp_directory_path() / "pc-process-test-cwd";
  std::filesystem::create_directories(dir);
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "echo \"$ONLY_VAR:$HOME:$(pwd)\""};
  options.env = std::map<std::string, std::string>{{"ONLY_VAR", "x1"}, {"PATH", "/usr/bin:/bin"}};
  options.cwd = dir;
  Output o;
  run_streaming(
      options, o.callback(), [] { return false; }, milliseconds(100));
  REQUIRE(o.out.size() == 1);
  CHECK(o.out[0] == "x1::" + std::filesystem::canonical(dir).string());
  std::filesystem::remove_all(dir);
}

TEST_CASE("process: stdin is /dev/null and signals are at their defaults", "[process]") {
  Output o;
  // `read` fails at once on /dev/null; a blocked stdin would hang the test.
  CHECK(run_sh("read x; echo \"read=$?\"", o).code == 0);
  CHECK(o.out == std::vector<std::string>{"read=1"});
}

TEST_CASE("process: stop sends SIGTERM to the whole process group", "[process]") {
  auto pidfile = std::filesystem::temp_directory_path() / "pc-process-grandchild.pid";
  std::filesystem::remove(pidfile);
  Output o;
  auto start = std::chrono::steady_clock::now();
  auto status = run_sh("sleep 300 & echo $! > " + pidfile.string() + "; wait", o, [&] {
    return std::filesystem::exists(pidfile) && std::filesystem::file_size(pidfile) > 0;
  });
  CHECK(status.signal == SIGTERM);
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(5000));
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  REQUIRE(grandchild > 0);
  std::this_thread::sleep_for(milliseconds(100));
  CHECK_FALSE(alive(grandchild));
  std::filesystem::remove(pidfile);
}

TEST_CASE("process: a child that ignores SIGTERM is killed after the grace period", "[process]") {
  Output o;
  auto start = std::chrono::steady_clock::now();
  auto status = run_sh(
      "trap '' TERM; echo ready; while :; do sleep 0.1; done", o, [&] { return !o.out.empty(); },
      milliseconds(700));
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(status.signal == SIGKILL);
  CHECK(took >= milliseconds(700));
  CHECK(took < milliseconds(5000));
}

TEST_CASE("process: megabytes of output in long lines stay bounded", "[process]") {
  Output o;
  auto start = std::chrono::steady_clock::now();
  // 20 MiB without a newline, then short lines.
  auto status = run_sh("head -c 20971520 /dev/zero | tr '\\0' 'x'; echo; echo done", o);
  CHECK(status.code == 0);
  CHECK(o.bytes == 20971520u + 4u);
  CHECK(o.longest == kMaxLine);
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(20000));
}

TEST_CASE("process: Child destructor kills and reaps a running child", "[process]") {
  pid_t pid = 0;
  {
    SpawnOptions options;
    options.argv = {"/bin/sh", "-c", "sleep 300"};
    Child child = Child::spawn(options);
    pid = child.pid();
    REQUIRE(pid > 0);
    CHECK(alive(pid));
  }
  CHECK_FALSE(alive(pid));
}
