#include "process/process.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace pc;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// Collects output; keeps only short lines so that tests writing megabytes do
// not measure their own memory.
struct Output {
  std::vector<std::string> out;
  std::vector<std::string> err;
  std::size_t bytes = 0;
  std::size_t lines = 0;
  std::size_t longest = 0;
  LineCallback callback() {
    return [this](std::string_view line, bool is_stderr) {
      bytes += line.size();
      ++lines;
      longest = std::max(longest, line.size());
      if (line.size() < 256 && out.size() + err.size() < 1000) {
        (is_stderr ? err : out).emplace_back(line);
      }
    };
  }
};

const auto kNever = [] { return false; };

ExitStatus run_sh(const std::string& script, Output& output,
                  const std::function<bool()>& stop = kNever,
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

// Waits (bounded) until `pid` is gone: killed processes take a moment.
bool gone_soon(pid_t pid) {
  for (int i = 0; i < 50 && alive(pid); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  return !alive(pid);
}

pid_t read_pid(const fs::path& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// A fresh directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pc-process-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void run_until_empty(ProcessSupervisor& supervisor, milliseconds limit = milliseconds(10000)) {
  const auto deadline = Clock::now() + limit;
  while (!supervisor.empty() && Clock::now() < deadline) {
    supervisor.run_once(milliseconds(100));
  }
  REQUIRE(supervisor.empty());
}

long max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

TEST_CASE("explain_exit and describe", "[process]") {
  CHECK(ExitStatus{3, 0}.describe() == "exit code 3");
  CHECK(ExitStatus{-1, 9}.describe() == "killed by signal 9 (SIGKILL)");
  CHECK(ExitStatus{-1, 15}.describe() == "killed by signal 15 (SIGTERM)");
  CHECK(ExitStatus{}.describe() == "unknown exit status");
  CHECK(ExitStatus{0, 0}.exited());
  CHECK_FALSE(ExitStatus{-1, 9}.exited());

  CHECK(explain_exit(ExitStatus{0, 0}) == "success");
  CHECK(explain_exit(ExitStatus{1, 0}) == "general error");
  CHECK(explain_exit(ExitStatus{2, 0}) == "misuse of a command (bad arguments)");
  CHECK(explain_exit(ExitStatus{42, 0}) == "unexpected exit code");
  CHECK(explain_exit(ExitStatus{126, 0}) == "command found but not executable");
  CHECK(explain_exit(ExitStatus{127, 0}) == "command not found");
  CHECK(explain_exit(ExitStatus{-1, SIGKILL}) == "killed (SIGKILL; often out of memory)");
  CHECK(explain_exit(ExitStatus{137, 0}) == "killed (SIGKILL; often out of memory)");
  CHECK(explain_exit(ExitStatus{-1, SIGTERM}) == "terminated (SIGTERM)");
  CHECK(explain_exit(ExitStatus{143, 0}) == "terminated (SIGTERM)");
  CHECK(explain_exit(ExitStatus{130, 0}) == "interrupted (SIGINT)");
  CHECK(explain_exit(ExitStatus{-1, SIGSEGV}) == "segmentation fault (SIGSEGV)");
  CHECK(explain_exit(ExitStatus{139, 0}) == "segmentation fault (SIGSEGV)");
  CHECK(explain_exit(ExitStatus{134, 0}) == "aborted (SIGABRT)");
  CHECK(explain_exit(ExitStatus{-1, SIGUSR1}) == "killed by SIGUSR1");
  CHECK(explain_exit(ExitStatus{-1, 40}) == "killed by signal 40");
  CHECK(explain_exit(ExitStatus{}) == "the exit status could not be read");
}

TEST_CASE("run_streaming: exit codes and signals", "[process]") {
  Output o;
  CHECK(run_sh("exit 0", o) == ExitStatus{0, 0});
  CHECK(run_sh("exit 3", o) == ExitStatus{3, 0});
  CHECK(run_sh("exit 255", o) == ExitStatus{255, 0});
  auto killed = run_sh("kill -9 $$", o);
  CHECK_FALSE(killed.exited());
  CHECK(killed.signal == SIGKILL);
  CHECK(run_sh("kill -TERM $$", o).signal == SIGTERM);
  CHECK(run_sh("kill -SEGV $$", o).signal == SIGSEGV);
}

TEST_CASE("run_streaming: stdout and stderr lines", "[process]") {
  Output o;
  SECTION("separated, empty lines kept, partial last line flushed") {
    CHECK(run_sh("echo one; echo two >&2; echo; printf 'no newline'; printf 'err tail' >&2", o)
              .code == 0);
    CHECK(o.out == std::vector<std::string>{"one", "", "no newline"});
    CHECK(o.err == std::vector<std::string>{"two", "err tail"});
  }
  SECTION("a child that closes stdout early keeps running until it exits") {
    CHECK(run_sh("echo first; exec 1>&-; sleep 0.2; echo late >&2; exit 5", o).code == 5);
    CHECK(o.out == std::vector<std::string>{"first"});
    CHECK(o.err == std::vector<std::string>{"late"});
  }
}

TEST_CASE("spawn failures are 127/126 with the reason", "[process]") {
  Output o;
  SpawnOptions options;
  SECTION("absolute path that does not exist") {
    options.argv = {"/nonexistent/prefect-cycle-test-binary"};
    CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 127);
    CHECK(o.err == std::vector<std::string>{
                       "cannot start \"/nonexistent/prefect-cycle-test-binary\": No such file "
                       "or directory"});
  }
  SECTION("a name not on the PATH of the child's environment") {
    options.argv = {"sh", "-c", "exit 0"};
    options.env = std::map<std::string, std::string>{{"PATH", "/nonexistent-dir"}};
    CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 127);
    CHECK(o.err ==
          std::vector<std::string>{"cannot start \"sh\": not found in PATH \"/nonexistent-dir\""});
  }
  SECTION("a file that is not executable") {
    TempDir dir;
    std::ofstream(dir.path / "script.sh") << "echo hi\n";
    options.argv = {(dir.path / "script.sh").string()};
    CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 126);
    REQUIRE(o.err.size() == 1);
    CHECK_THAT(o.err[0], Catch::EndsWith("Permission denied"));
  }
  SECTION("a working directory that does not exist") {
    options.argv = {"/bin/sh", "-c", "exit 0"};
    options.cwd = "/nonexistent/prefect-cycle-dir";
    CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 126);
    CHECK(o.err ==
          std::vector<std::string>{"cannot start \"/bin/sh\": working directory "
                                   "\"/nonexistent/prefect-cycle-dir\" does not exist or is "
                                   "not a directory"});
  }
  SECTION("an empty command") {
    CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 127);
    CHECK(o.err == std::vector<std::string>{"cannot start an empty command"});
  }
}

TEST_CASE("environment and working directory are honoured", "[process]") {
  TempDir dir;
  SpawnOptions options;
  // "sh" found through the child's own PATH, not ours.
  options.argv = {"sh", "-c", "echo \"$ONLY_VAR:$HOME:$(pwd)\""};
  options.env = std::map<std::string, std::string>{{"ONLY_VAR", "x1"}, {"PATH", "/usr/bin:/bin"}};
  options.cwd = dir.path;
  Output o;
  CHECK(run_streaming(options, o.callback(), kNever, milliseconds(100)).code == 0);
  CHECK(o.out == std::vector<std::string>{"x1::" + fs::canonical(dir.path).string()});
}

TEST_CASE("stdin is /dev/null; signal dispositions and mask are reset", "[process]") {
  Output o;
  SECTION("stdin") {
    // `read` fails at once on /dev/null; an inherited stdin could hang.
    CHECK(run_sh("read x; echo \"read=$?\"", o).code == 0);
    CHECK(o.out == std::vector<std::string>{"read=1"});
  }
  SECTION("an ignored SIGINT of ours is not inherited") {
    struct sigaction ignore {};
    struct sigaction saved {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ignore, &saved);
    auto status = run_sh("kill -INT $$; echo survived", o);
    sigaction(SIGINT, &saved, nullptr);
    CHECK(status.signal == SIGINT);
    CHECK(o.out.empty());
  }
  SECTION("a blocked SIGTERM of ours is not inherited") {
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    auto status = run_sh("kill -TERM $$; echo survived", o);
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    CHECK(status.signal == SIGTERM);
    CHECK(o.out.empty());
  }
}

TEST_CASE("run_streaming: stop sends SIGTERM to the whole process group", "[process]") {
  TempDir dir;
  const auto pidfile = dir.path / "grandchild.pid";
  Output o;
  auto start = Clock::now();
  auto status = run_sh("sleep 300 & echo $! > " + pidfile.string() + "; wait", o,
                       [&] { return fs::exists(pidfile) && fs::file_size(pidfile) > 0; });
  CHECK(status.signal == SIGTERM);
  CHECK(Clock::now() - start < milliseconds(5000));
  pid_t grandchild = read_pid(pidfile);
  REQUIRE(grandchild > 0);
  CHECK(gone_soon(grandchild));
}

TEST_CASE("run_streaming: a child that ignores SIGTERM is killed after the grace period",
          "[process]") {
  Output o;
  auto start = Clock::now();
  auto status = run_sh(
      "trap '' TERM; echo ready; while :; do sleep 0.1; done", o, [&] { return !o.out.empty(); },
      milliseconds(700));
  auto took = Clock::now() - start;
  CHECK(status.signal == SIGKILL);
  CHECK(took >= milliseconds(700));
  CHECK(took < milliseconds(5000));
}

TEST_CASE("leftovers in the group are killed when the child exits", "[process]") {
  TempDir dir;
  const auto pidfile = dir.path / "leftover.pid";
  Output o;
  auto start = Clock::now();
  // The background sleep keeps stdout open: without the group kill we would
  // wait for it (300 s) or leave it behind.
  auto status = run_sh("sleep 300 & echo $! > " + pidfile.string() + "; echo bye", o);
  CHECK(status.code == 0);
  CHECK(o.out == std::vector<std::string>{"bye"});
  CHECK(Clock::now() - start < milliseconds(3000));
  pid_t leftover = read_pid(pidfile);
  REQUIRE(leftover > 0);
  CHECK(gone_soon(leftover));
}

TEST_CASE("megabytes of output in long lines: fast, memory bounded", "[process]") {
  Output o;
  const long rss_before = max_rss_kib();
  auto start = Clock::now();
  // 20 MiB in 2 MiB lines, then a short line.
  auto status = run_sh(
      "i=0; while [ $i -lt 10 ]; do head -c 2097152 /dev/zero | tr '\\0' 'x'; echo; "
      "i=$((i+1)); done; echo done",
      o);
  CHECK(status.code == 0);
  CHECK(o.bytes == 20971520u + 4u);
  CHECK(o.longest == kMaxLine);
  CHECK(o.lines == 10u * (2097152u / kMaxLine) + 1u);
  CHECK(o.out.back() == "done");
  CHECK(Clock::now() - start < milliseconds(20000));
  CHECK(max_rss_kib() - rss_before < 8 * 1024);
}

TEST_CASE("Child: destructor and move assignment kill and reap", "[process]") {
  TempDir dir;
  const auto pidfile = dir.path / "grandchild.pid";
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "sleep 300 & echo $! > " + pidfile.string() + "; wait"};
  pid_t pid = 0;
  {
    Child child = Child::spawn(options);
    pid = child.pid();
    REQUIRE(pid > 0);
    CHECK(child.exit_fd() >= 0);  // Linux >= 5.3
    while (!fs::exists(pidfile) || fs::file_size(pidfile) == 0) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    CHECK_FALSE(child.poll_exit());
  }
  CHECK_FALSE(alive(pid));
  CHECK(gone_soon(read_pid(pidfile)));

  Child first = Child::spawn(SpawnOptions{{"/bin/sh", "-c", "sleep 300"}, std::nullopt, {}});
  const pid_t first_pid = first.pid();
  first = Child::spawn(SpawnOptions{{"/bin/sh", "-c", "exit 7"}, std::nullopt, {}});
  CHECK_FALSE(alive(first_pid));
  std::optional<ExitStatus> status;
  for (int i = 0; i < 200 && !status; ++i) {
    status = first.poll_exit();
    std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(status == ExitStatus{7, 0});
  CHECK(first.poll_exit() == ExitStatus{7, 0});  // cached
}

TEST_CASE("ProcessSupervisor: many children at once", "[process]") {
  ProcessSupervisor supervisor;
  std::map<int, std::vector<std::string>> lines;
  std::map<int, ExitStatus> exits;
  for (int i = 0; i < 20; ++i) {
    SpawnOptions options;
    options.argv = {"/bin/sh", "-c",
                    "echo out" + std::to_string(i) + "; echo err" + std::to_string(i) +
                        " >&2; sleep 0." + std::to_string(i % 3) + "; exit " + std::to_string(i)};
    supervisor.spawn(
        options,
        [&lines, i](std::string_view line, bool is_stderr) {
          lines[i].push_back((is_stderr ? "E:" : "O:") + std::string(line));
        },
        [&exits, i](const ExitStatus& s) { exits[i] = s; });
  }
  CHECK(supervisor.size() == 20u);
  run_until_empty(supervisor);
  REQUIRE(exits.size() == 20u);
  for (int i = 0; i < 20; ++i) {
    CHECK(exits[i] == ExitStatus{i, 0});
    std::vector<std::string> got = lines[i];
    std::sort(got.begin(), got.end());
    CHECK(got ==
          std::vector<std::string>{"E:err" + std::to_string(i), "O:out" + std::to_string(i)});
  }
  CHECK(supervisor.run_once(milliseconds(1000)) == 0u);  // empty: returns at once
}

TEST_CASE("ProcessSupervisor: a child writing without end starves nobody", "[process]") {
  ProcessSupervisor supervisor;
  std::size_t chatty_bytes = 0;
  std::optional<ExitStatus> chatty_exit, quiet_exit;
  auto chatty = supervisor.spawn(
      SpawnOptions{{"/bin/sh", "-c", "yes 0123456789"}, std::nullopt, {}},
      [&](std::string_view line, bool) { chatty_bytes += line.size() + 1; },
      [&](const ExitStatus& s) { chatty_exit = s; });
  auto start = Clock::now();
  supervisor.spawn(SpawnOptions{{"/bin/sh", "-c", "sleep 0.3; exit 4"}, std::nullopt, {}}, nullptr,
                   [&](const ExitStatus& s) { quiet_exit = s; });
  while (!quiet_exit && Clock::now() - start < milliseconds(10000)) {
    supervisor.run_once(milliseconds(100));
  }
  CHECK(quiet_exit == ExitStatus{4, 0});
  CHECK(Clock::now() - start < milliseconds(3000));
  CHECK(chatty_bytes > 1024 * 1024u);
  supervisor.terminate(chatty, milliseconds(1000));
  run_until_empty(supervisor);
  CHECK((chatty_exit->signal == SIGTERM || chatty_exit->signal == SIGPIPE));
}

TEST_CASE("ProcessSupervisor: terminate, grace and SIGKILL", "[process]") {
  TempDir dir;
  const auto pidfile = dir.path / "grandchild.pid";
  ProcessSupervisor supervisor;
  std::optional<ExitStatus> polite, stubborn;
  std::vector<std::string> stubborn_lines;
  auto a = supervisor.spawn(
      SpawnOptions{{"/bin/sh", "-c", "sleep 300 & echo $! > " + pidfile.string() + "; wait"},
                   std::nullopt,
                   {}},
      nullptr, [&](const ExitStatus& s) { polite = s; });
  auto b = supervisor.spawn(
      SpawnOptions{{"/bin/sh", "-c",
                    "trap 'echo got TERM' TERM; echo ready; while :; do sleep "
                    "0.05; done"},
                   std::nullopt,
                   {}},
      [&](std::string_view line, bool) { stubborn_lines.emplace_back(line); },
      [&](const ExitStatus& s) { stubborn = s; });
  CHECK(supervisor.pid(a) > 0);
  CHECK_FALSE(supervisor.pid(9999));
  const auto ready = Clock::now() + milliseconds(5000);
  while ((stubborn_lines.empty() || !fs::exists(pidfile) || fs::file_size(pidfile) == 0) &&
         Clock::now() < ready) {
    supervisor.run_once(milliseconds(50));
  }
  REQUIRE(stubborn_lines == std::vector<std::string>{"ready"});

  auto start = Clock::now();
  supervisor.terminate(a, milliseconds(5000));
  supervisor.terminate(b, milliseconds(600));
  supervisor.terminate(b, milliseconds(60000));  // does not extend the deadline
  supervisor.terminate(12345, milliseconds(0));  // unknown: ignored
  CHECK(supervisor.terminating(b));
  run_until_empty(supervisor);
  auto took = Clock::now() - start;
  CHECK(polite->signal == SIGTERM);
  CHECK(stubborn->signal == SIGKILL);
  CHECK(took >= milliseconds(600));
  CHECK(took < milliseconds(4000));
  CHECK(std::count(stubborn_lines.begin(), stubborn_lines.end(), "got TERM") == 1);
  CHECK(gone_soon(read_pid(pidfile)));
}

TEST_CASE("ProcessSupervisor: failed spawns and callbacks that add children", "[process]") {
  ProcessSupervisor supervisor;
  std::vector<std::string> events;
  std::function<void(int)> chain = [&](int n) {
    supervisor.spawn(
        SpawnOptions{{"/bin/sh", "-c", "echo step" + std::to_string(n)}, std::nullopt, {}},
        [&events](std::string_view line, bool) { events.emplace_back(line); },
        [&, n](const ExitStatus&) {
          if (n < 3) {
            chain(n + 1);
          }
        });
  };
  chain(1);
  supervisor.spawn(
      SpawnOptions{{"/nonexistent/x"}, std::nullopt, {}},
      [&events](std::string_view line, bool is_stderr) {
        events.push_back((is_stderr ? "E:" : "O:") + std::string(line));
      },
      [&events](const ExitStatus& s) { events.push_back("exit " + std::to_string(s.code)); });
  run_until_empty(supervisor);
  CHECK(std::count(events.begin(), events.end(), "step3") == 1);
  auto it = std::find(events.begin(), events.end(),
                      "E:cannot start \"/nonexistent/x\": No such file or directory");
  REQUIRE(it != events.end());
  CHECK(*(it + 1) == "exit 127");

  SECTION("an exception from on_exit propagates after the child is removed") {
    supervisor.spawn(SpawnOptions{{"/bin/sh", "-c", "exit 0"}, std::nullopt, {}}, nullptr,
                     [](const ExitStatus&) { throw std::runtime_error("boom"); });
    bool thrown = false;
    for (int i = 0; i < 100 && !supervisor.empty(); ++i) {
      try {
        supervisor.run_once(milliseconds(100));
      } catch (const std::runtime_error& e) {
        thrown = std::string(e.what()) == "boom";
      }
    }
    CHECK(thrown);
    CHECK(supervisor.empty());
  }
}

TEST_CASE("ProcessSupervisor: a silent child's exit is seen at once", "[process]") {
  ProcessSupervisor supervisor;
  std::optional<ExitStatus> status;
  // The grandchild holds the pipes: only the pidfd (or the short poll cap)
  // tells us that the child exited.
  supervisor.spawn(
      SpawnOptions{{"/bin/sh", "-c", "sleep 300 & sleep 0.1; exit 2"}, std::nullopt, {}}, nullptr,
      [&](const ExitStatus& s) { status = s; });
  auto start = Clock::now();
  while (!status && Clock::now() - start < milliseconds(5000)) {
    supervisor.run_once(milliseconds(5000));
  }
  CHECK(status == ExitStatus{2, 0});
  CHECK(Clock::now() - start < milliseconds(1000));
}
