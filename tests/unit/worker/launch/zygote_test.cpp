// The warm launcher's C++ side against the real Python launcher (the source
// shipped in the binary), with a small module standing in for Prefect's
// engine so that no server is needed. The e2e tests run real flow runs.
#include "worker/launch/zygote.hpp"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace pc;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

// Prints what a flow run would see, then exits as its environment says.
constexpr const char* kFakeEngine = R"(import os, sys, time
print("mark=" + os.environ.get("MARK", "-"), flush=True)
print("cwd=" + os.getcwd(), flush=True)
print("ppid=" + str(os.getppid()), flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
)";

struct Fixture {
  fs::path dir;
  Fixture() {
    dir = fs::temp_directory_path() / ("pc-warm-" + std::to_string(getpid()) + "-" +
                                       std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(dir / "work");
    std::ofstream(dir / "fake_engine.py") << kFakeEngine;
    std::ofstream(dir / "spins_a_thread.py")
        << "import threading, time\n"
           "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n";
    std::ofstream(dir / "broken_dep.py") << "raise ImportError('no such wheel')\n";
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::map<std::string, std::string> env(std::map<std::string, std::string> extra = {}) const {
    extra["PYTHONPATH"] = dir.string();
    extra["PATH"] = "/usr/bin:/bin";
    return extra;
  }
  // scripts/warm-pythons.sh runs these tests with other Pythons (3.12+ warn
  // on fork() in a multi-threaded process: the launcher must never do that).
  static std::string python() {
    const char* chosen = std::getenv("PC_WARM_TEST_PYTHON");
    return chosen != nullptr && *chosen != '\0' ? chosen : "python3";
  }
  ZygoteOptions options(std::vector<std::string> preload = {}) const {
    ZygoteOptions o;
    o.python = python();
    o.preload = std::move(preload);
    o.env = env();
    o.engine_modules = "json";
    o.run_module = "fake_engine";
    o.answer_timeout = std::chrono::seconds(10);
    return o;
  }
  SpawnOptions run(std::map<std::string, std::string> extra) const {
    SpawnOptions spawn;
    spawn.argv = {python(), "-m", "prefect.engine"};
    spawn.env = env(std::move(extra));
    spawn.cwd = dir / "work";
    return spawn;
  }
};

struct Ended {
  std::vector<std::string> out;
  std::vector<std::string> err;
  std::optional<ExitStatus> status;
};

ProcessSupervisor::Id supervise(ProcessSupervisor& supervisor, Child child, Ended& ended) {
  return supervisor.add(
      std::move(child),
      [&ended](std::string_view line, bool is_stderr) {
        (is_stderr ? ended.err : ended.out).emplace_back(line);
      },
      [&ended](const ExitStatus& s) { ended.status = s; });
}

void run_until_empty(ProcessSupervisor& supervisor) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!supervisor.empty() && std::chrono::steady_clock::now() < until) {
    supervisor.run_once(milliseconds(100));
  }
  REQUIRE(supervisor.empty());
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// A ready launcher with one run forked ("run-a", environment `env`) and
// supervised.
struct OneForked {
  Zygote launcher;
  Ended ended;
  ProcessSupervisor supervisor;  // after `ended`: its callbacks write there
  ProcessSupervisor::Id id = 0;
  OneForked(const Fixture& f, std::map<std::string, std::string> env) : launcher(f.options()) {
    REQUIRE(launcher.start().empty());
    std::string why;
    auto child = launcher.fork_run(f.run(std::move(env)), "run-a", why);
    REQUIRE(child);
    id = supervise(supervisor, std::move(*child), ended);
  }
};

}  // namespace

TEST_CASE(
    "warm runs are our own children with the job's environment, directory, output and "
    "exit code",
    "[warm]") {
  Fixture f;
  Zygote launcher(f.options());
  REQUIRE(launcher.start().empty());
  REQUIRE(launcher.ready());

  ProcessSupervisor supervisor;
  Ended a;
  Ended b;
  std::string why;
  auto first = launcher.fork_run(f.run({{"MARK", "first"}, {"EXIT_CODE", "0"}}), "run-a", why);
  REQUIRE(first);
  auto second = launcher.fork_run(f.run({{"MARK", "second"}, {"EXIT_CODE", "3"}}), "run-b", why);
  REQUIRE(second);
  CHECK(first->pid() != launcher.pid());
  CHECK(first->pid() != second->pid());
  supervise(supervisor, std::move(*first), a);
  supervise(supervisor, std::move(*second), b);
  run_until_empty(supervisor);

  const std::string us = "ppid=" + std::to_string(getpid());
  CHECK(has(a.out, "mark=first"));
  CHECK(has(b.out, "mark=second"));
  CHECK(has(a.out, "cwd=" + (f.dir / "work").string()));
  CHECK(has(a.out, us));
  CHECK(has(b.out, us));
  CHECK(has(a.err, "to stderr"));
  CHECK(a.err.size() == 1);  // nothing else: no fork warning of Python 3.12+
  REQUIRE(a.status);
  REQUIRE(b.status);
  CHECK(*a.status == ExitStatus{0, 0});
  CHECK(*b.status == ExitStatus{3, 0});
}

TEST_CASE("a warm run stops through SIGTERM to its group like a cold one", "[warm]") {
  Fixture f;
  OneForked run(f, {{"SLEEP", "30"}});
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!has(run.ended.out, "mark=-") && std::chrono::steady_clock::now() < until) {
    run.supervisor.run_once(milliseconds(50));
  }
  run.supervisor.terminate(run.id, std::chrono::seconds(5));
  run_until_empty(run.supervisor);
  REQUIRE(run.ended.status);
  CHECK(run.ended.status->signal == SIGTERM);
}

TEST_CASE("a preload that starts a thread: the launcher refuses and names the module", "[warm]") {
  Fixture f;
  Zygote launcher(f.options({"os", "spins_a_thread"}));
  const std::string why = launcher.start();
  CHECK_FALSE(launcher.ready());
  CHECK_THAT(why, Catch::Contains("spins_a_thread started 1 thread"));
  std::string why_not;
  CHECK_FALSE(launcher.fork_run(f.run({}), "run-a", why_not));
  CHECK(why_not == why);
}

TEST_CASE("a preload that fails to import is a warning naming it; the launcher goes on", "[warm]") {
  Fixture f;
  Zygote launcher(f.options({"broken_dep"}));
  REQUIRE(launcher.start().empty());
  REQUIRE(launcher.warnings().size() == 1);
  CHECK_THAT(launcher.warnings()[0],
             Catch::Contains("broken_dep failed (ImportError: no such wheel)"));
}

TEST_CASE("a launcher that dies loses no run: forked runs stay ours, later launches say why",
          "[warm]") {
  Fixture f;
  OneForked run(f, {{"SLEEP", "1"}, {"EXIT_CODE", "5"}});
  REQUIRE(kill(run.launcher.pid(), SIGKILL) == 0);
  std::this_thread::sleep_for(milliseconds(200));

  std::string why_not;
  CHECK_FALSE(run.launcher.fork_run(f.run({}), "run-b", why_not));
  CHECK_FALSE(why_not.empty());
  CHECK_FALSE(run.launcher.ready());
  run_until_empty(run.supervisor);
  REQUIRE(run.ended.status);
  CHECK(*run.ended.status == ExitStatus{5, 0});
}

TEST_CASE("a launcher whose Python cannot start says so", "[warm]") {
  Fixture f;
  auto options = f.options();
  options.python = "/nonexistent/python3";
  Zygote launcher(options);
  CHECK_THAT(launcher.start(), Catch::Contains("/nonexistent/python3"));
  CHECK_FALSE(launcher.ready());
}
