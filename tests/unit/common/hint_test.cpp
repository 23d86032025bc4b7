#include "common/hint.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "cli/app.hpp"
#include "common/error.hpp"
#include "config/config.hpp"
#include "cycle/cycle.hpp"
#include "cycle/summary.hpp"
#include "db/database.hpp"
#include "http/api_client.hpp"
#include "http/fake_transport.hpp"
#include "job_config/command_split.hpp"
#include "prefect/client.hpp"
#include "repo/git_ops.hpp"
#include "repo/preflight.hpp"
#include "repo/repo_fixture.hpp"
#include "worker/cli_worker.hpp"
#include "worker/worker.hpp"

// The table of error classes: every Hint is driven end to end through the
// code that raises it (here, or in tests/e2e/test_hints.py where only a real
// component reaches it), and the README's Troubleshooting list is the table.

using namespace pc;
using namespace pc::testing;
using std::chrono::seconds;

namespace {

const fs::path kRoot = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The Troubleshooting list as the README must hold it, between its markers.
std::string troubleshooting_list() {
  std::string text;
  for (const auto& row : hint_table()) {
    text += "- `" + std::string(row.name) + "`: " + std::string(row.text) + "\n";
  }
  return text;
}

// An HttpTransport answering by request, for the cycle-level cases.
class RouteTransport : public HttpTransport {
 public:
  explicit RouteTransport(std::function<HttpResponse(const HttpRequest&)> route)
      : route_(std::move(route)) {}
  HttpResponse send(const HttpRequest& request) override { return route_(request); }

 private:
  std::function<HttpResponse(const HttpRequest&)> route_;
};

HttpResponse answer(long status, std::string body = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

constexpr const char* kProcessPool =
    R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"PAUSED"})";
constexpr const char* kDockerPool =
    R"({"id":"p1","name":"etl","type":"docker","is_paused":true,"status":"PAUSED"})";

Config cycle_config() {
  Config config;
  config.api_url = "http://h/api";
  config.work_pool = "etl";
  config.worker_name = "w";
  config.wait_for_completion = false;
  config.recover_stale_runs = false;
  return config;
}

// The routes every cycle below needs: the pool, its resume and pause, the
// due runs (one, so that the cycle is not an empty one, which would stop
// before the resume).
HttpResponse pool_routes(const HttpRequest& r, const char* pool) {
  if (r.method == "GET" && ends_with(r.url, "/work_pools/etl")) {
    return answer(200, pool);
  }
  if (r.method == "PATCH" && ends_with(r.url, "/work_pools/etl")) {
    return answer(204);
  }
  if (ends_with(r.url, "/flow_runs/filter")) {
    return answer(200, R"([{"id":"r1","name":"due","state":{"type":"SCHEDULED"}}])");
  }
  return answer(500, R"({"detail":"not scripted"})");
}

class FixedWorker : public WorkerPhase {
 public:
  explicit FixedWorker(std::chrono::milliseconds busy) : busy_(busy) {}
  WorkerPhaseResult run(const Logger&) override {
    std::this_thread::sleep_for(busy_);
    return {};
  }

 private:
  std::chrono::milliseconds busy_;
};

// Runs one cycle against `route`; returns the cycle's final message.
std::string cycle_message(
    const Config& config, const std::function<HttpResponse(const HttpRequest&)>& route,
    const std::function<std::unique_ptr<WorkerPhase>(PrefectClient&, Sleeper&, const WorkPool&,
                                                     std::function<std::string()>)>& worker =
        nullptr) {
  RouteTransport transport(route);
  FakeSleeper sleeper;
  ApiClient api(transport, ApiOptions{config.api_url, "", "", seconds(5)}, Logger::null(),
                RetryPolicy{}, sleeper);
  PrefectClient client(api);
  CycleDeps deps{client,
                 pc::real_clock(),
                 sleeper,
                 [](const Logger&) { return PreflightReport{}; },
                 [&](const WorkPool& pool, const PreflightReport&,
                     WorkerHooks hooks) -> std::unique_ptr<WorkerPhase> {
                   if (worker) {
                     return worker(client, sleeper, pool, std::move(hooks.stop_reason));
                   }
                   return std::make_unique<FixedWorker>(std::chrono::milliseconds(0));
                 },
                 [] { return 0; },
                 [] { return false; }};
  CycleSummary summary;
  run_cycle(config, Logger::null(), deps, summary);
  return summary.message;
}

// Runs `f`, which must throw pc::Error; returns it.
template <typename F>
std::optional<Error> error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

std::string closed_port_url() {
  int port = 0;
  ::close(listen_loopback(1, port));  // nothing listens there now
  return "http://127.0.0.1:" + std::to_string(port) + "/acme/flows.git";
}

// One row per error class: what drives it, and the class it must end in.
struct Case {
  std::string_view name;
  std::function<std::string(Hint&)> drive;  // the final message; sets the Hint seen
};

std::function<std::string(Hint&)> thrown(std::function<void()> f) {
  return [f](Hint& seen) -> std::string {
    auto e = error_of(f);
    REQUIRE(e);
    seen = e->hint();
    CHECK(std::string(e->what()) == e->message() + "; fix: " + std::string(hint_text(e->hint())));
    return e->what();
  };
}

// A cycle's final message; the class is read back from its hint text.
std::function<std::string(Hint&)> cycle(std::function<std::string()> f) {
  return [f](Hint& seen) -> std::string {
    std::string message = f();
    for (const auto& row : hint_table()) {
      if (ends_with(message, "; fix: " + std::string(row.text))) {
        seen = row.hint;
      }
    }
    return message;
  };
}

fs::path script(const fs::path& dir, const std::string& name, const std::string& body) {
  fs::path path = dir / name;
  write_file(path, "#!/bin/sh\n" + body + "\n");
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

std::vector<Case> unit_cases(const TempDir& tmp, BareRepo& repo) {
  auto api = [](std::function<void(FakeTransport&)> script_it,
                std::function<void(ApiClient&)> call = nullptr, bool interrupted = false) {
    return thrown([=] {
      FakeTransport transport;
      FakeSleeper sleeper;
      sleeper.interrupted = interrupted;
      script_it(transport);
      RetryPolicy policy;
      policy.max_attempts = 2;
      ApiClient client(transport, ApiOptions{"http://h/api", "", "", seconds(5)}, Logger::null(),
                       policy, sleeper);
      if (call) {
        call(client);
      } else {
        client.request("GET", "/health");
      }
    });
  };
  // Probes answer Prefect's version; pip fails.
  const fs::path pip_fails =
      script(tmp.path(), "pip-fails", "if [ \"$1\" = -c ]; then echo 3.8.8; exit 0; fi\nexit 1");
  write_file(tmp / "not-a-dir", "x");

  return {
      {"config.value", thrown([] {
         load_config({{"PREFECT_API_URL", "http://h/api"}, {"PREFECT_WORKER_FLOW_LIMIT", "abc"}},
                     {});
       })},
      {"config.code_dir_without_repository", thrown([&] {
         Config c;
         c.code_dir = tmp / "code";
         run_preflight(c, Logger::null(), [] { return false; });
       })},
      {"pool.not_found", cycle([] {
         return cycle_message(cycle_config(), [](const HttpRequest& r) {
           return r.method == "GET" ? answer(404, R"({"detail":"Work pool not found."})")
                                    : answer(204);
         });
       })},
      {"pool.type", cycle([] {
         return cycle_message(cycle_config(),
                              [](const HttpRequest& r) { return pool_routes(r, kDockerPool); });
       })},
      {"deployment.not_found", cycle([] {
         Config c = cycle_config();
         c.trigger_deployments = {{"etl-flow", "nightly"}};
         return cycle_message(c, [](const HttpRequest& r) {
           if (r.url.find("/deployments/name/") != std::string::npos) {
             return answer(404, R"({"detail":"Deployment not found"})");
           }
           return pool_routes(r, kProcessPool);
         });
       })},
      {"summary.file", thrown([&] {
         write_summary_file(tmp / "no-such-dir" / "summary.json", CycleSummary{}, Redactor{});
       })},
      {"api.unreachable", api([](FakeTransport& t) {
         t.fail("Failed to connect to h port 4200: Connection refused")
             .fail("Failed to connect to h port 4200: Connection refused");
       })},
      {"api.auth", api([](FakeTransport& t) { t.reply(401, R"({"detail":"Unauthorized"})"); })},
      {"api.csrf",
       api([](FakeTransport& t) { t.reply(403, R"({"detail":"Invalid CSRF token"})"); })},
      {"api.tls", api([](FakeTransport& t) {
         t.script_error(TransportError("SSL certificate problem: self-signed certificate", false,
                                       false, true));
       })},
      {"api.server_error",
       api([](FakeTransport& t) { t.reply(500, R"({"detail":"database is locked"})"); })},
      {"api.answer", api([](FakeTransport& t) { t.reply(200, "<html>login</html>"); })},
      {"api.gone", api([](FakeTransport& t) { t.reply(404); },
                       [](ApiClient& a) { PrefectClient(a).set_work_pool_paused("etl", true); })},
      {"worker.cli", cycle([] {
         Config c = cycle_config();
         c.worker_type = "docker";
         c.python = "/bin/false";
         return cycle_message(
             c, [](const HttpRequest& r) { return pool_routes(r, kDockerPool); },
             [&c](PrefectClient&, Sleeper&, const WorkPool&, std::function<std::string()> stop) {
               return std::make_unique<CliWorker>(c, Environment{}, std::move(stop));
             });
       })},
      {"worker.crash_loop", cycle([] {
         Config c = cycle_config();
         c.run_forever = true;
         c.max_consecutive_failures = 1;
         return cycle_message(
             c, [](const HttpRequest& r) { return pool_routes(r, kProcessPool); },
             [&c](PrefectClient& client, Sleeper& sleeper, const WorkPool& pool,
                  std::function<std::string()> stop) {
               NativeWorkerOptions options;
               options.hostname = "h";
               options.hooks.stop_reason = std::move(stop);
               return std::make_unique<NativeWorker>(c, client, sleeper, pool, options);
             });
       })},
      {"pool.pause_failed", cycle([] {
         return cycle_message(cycle_config(), [](const HttpRequest& r) {
           if (r.method == "PATCH" && r.body.find("true") != std::string::npos) {
             return answer(404, R"({"detail":"Work pool not found."})");
           }
           return pool_routes(r, kProcessPool);
         });
       })},
      {"job.template", thrown([] { split_command("python -m 'flows.etl"); })},
      {"wait.timeout", cycle([] {
         Config c = cycle_config();
         c.wait_timeout = seconds(1);
         return cycle_message(
             c, [](const HttpRequest& r) { return pool_routes(r, kProcessPool); },
             [](PrefectClient&, Sleeper&, const WorkPool&, std::function<std::string()>) {
               return std::make_unique<FixedWorker>(std::chrono::milliseconds(1200));
             });
       })},
      {"stopped", api([](FakeTransport& t) { t.reply(503); }, nullptr, true)},
      {"repository.unreachable",
       thrown([] { list_remote_heads(closed_port_url(), "", seconds(20)); })},
      {"repository.timeout", thrown([] {
         SilentListener silent;
         list_remote_heads("http://127.0.0.1:" + std::to_string(silent.port()) + "/r.git", "",
                           seconds(1));
       })},
      {"repository.auth", thrown([] {
         UnauthorizedServer server;
         list_remote_heads("http://127.0.0.1:" + std::to_string(server.port()) + "/r.git", "tok",
                           seconds(20));
       })},
      {"repository.failed",
       thrown([] { list_remote_heads("bogus://127.0.0.1/r.git", "", seconds(20)); })},
      {"repository.branch", thrown([&] {
         require_branch(list_remote_heads(repo.file_url(), "", seconds(20)), "mian",
                        repo.file_url());
       })},
      {"sync.unreachable", thrown([&] {
         sync_code_dir({closed_port_url(), "", "main", tmp / "sync-a", seconds(20)},
                       [] { return false; });
       })},
      {"sync.timeout", thrown([&] {
         SilentListener silent;
         sync_code_dir({"http://127.0.0.1:" + std::to_string(silent.port()) + "/r.git", "", "main",
                        tmp / "sync-b", seconds(1)},
                       [] { return false; });
       })},
      {"sync.failed", thrown([&] {
         sync_code_dir({"bogus://127.0.0.1/r.git", "", "main", tmp / "sync-c", seconds(20)},
                       [] { return false; });
       })},
      {"sync.code_dir", thrown([&] {
         sync_code_dir({repo.file_url(), "", "main", tmp / "not-a-dir", seconds(20)},
                       [] { return false; });
       })},
      {"install.requirements", thrown([&, pip_fails] {
         Config c;
         c.repository = repo.file_url();
         c.verify_repository = false;
         c.code_dir = tmp / "code-req";
         c.python = pip_fails.string();
         repo.commit_and_push("requirements.txt", "nope==0\n", "main");
         run_preflight(c, Logger::null(), [] { return false; });
       })},
      {"install.editable", thrown([&, pip_fails] {
         Config c;
         c.repository = repo.file_url();
         c.verify_repository = false;
         c.code_dir = tmp / "code-editable";
         c.install_requirements = false;
         c.install_editable = true;
         c.python = pip_fails.string();
         run_preflight(c, Logger::null(), [] { return false; });
       })},
      {"python", thrown([&] {
         Config c;
         c.python = (tmp / "no-such-python").string();
         run_preflight(c, Logger::null(), [] { return false; });
       })},
      {"database.missing", thrown([] {
         Config c;
         c.check_database = true;
         run_preflight(c, Logger::null(), [] { return false; });
       })},
      {"database.url",
       thrown([] { check_database("postgresql://u@127.0.0.1:5432/db?nope=1", seconds(2)); })},
      {"database.unreachable", thrown([] {
         int port = 0;
         ::close(listen_loopback(1, port));
         check_database("postgresql://u@127.0.0.1:" + std::to_string(port) + "/db", seconds(5));
       })},
      {"usage.flag", thrown([] {
         if (auto e = unknown_flag_error({"run", "--limt", "3"}, {"--limit", "--pool"})) {
           throw *e;
         }
       })},
  };
}

// The classes tests/e2e/test_hints.py drives: it names each, quoted.
std::set<std::string> e2e_cases() {
  const std::string text = read_text(kRoot / "tests" / "e2e" / "test_hints.py");
  std::set<std::string> names;
  for (const auto& row : hint_table()) {
    if (text.find("\"" + std::string(row.name) + "\"") != std::string::npos) {
      names.insert(std::string(row.name));
    }
  }
  return names;
}

}  // namespace

TEST_CASE("hint_table has one row per Hint, in enum order", "[common]") {
  const auto& table = hint_table();
  REQUIRE(table.size() == static_cast<std::size_t>(Hint::kCount));
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO(table[i].name);
    CHECK(static_cast<std::size_t>(table[i].hint) == i);
    CHECK(names.insert(table[i].name).second);
    CHECK(!table[i].text.empty());
    CHECK(hint_name(table[i].hint) == table[i].name);
    CHECK(hint_text(table[i].hint) == table[i].text);
  }
}

TEST_CASE("Error carries its hint after the message", "[common]") {
  Error e = preflight_error("cannot reach repository x", Hint::kRepositoryUnreachable);
  CHECK(e.code() == ExitCode::kPreflight);
  CHECK(e.message() == "cannot reach repository x");
  CHECK(std::string(e.what()) ==
        "cannot reach repository x; fix: check PREFECT_WORKER_REPOSITORY (--repository): the URL, "
        "host and port, that the host is up, and that no firewall blocks it; to skip this check, "
        "set PREFECT_WORKER_VERIFY_REPOSITORY=false (--no-verify-repository)");
}

TEST_CASE("every error class is driven end to end and ends in its hint", "[common][hints]") {
  TempDir tmp;
  BareRepo repo(tmp.path(), {"main"});
  const auto cases = unit_cases(tmp, repo);
  std::set<std::string> driven;
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      Hint seen = Hint::kCount;
      const std::string message = c.drive(seen);
      INFO(message);
      REQUIRE(seen != Hint::kCount);
      CHECK(hint_name(seen) == c.name);
      const std::string fix = "; fix: " + std::string(hint_text(seen));
      CHECK(ends_with(message, fix));
      CHECK(message.size() > fix.size());  // a message says what failed before the fix
    }
    driven.insert(std::string(c.name));
  }
  // Registry: a Hint nobody drives (here or in the e2e file) fails.
  for (const auto& name : e2e_cases()) {
    driven.insert(name);
  }
  for (const auto& row : hint_table()) {
    INFO("error class not driven by any test: " << row.name);
    CHECK(driven.count(std::string(row.name)) == 1);
  }
}

TEST_CASE("README's Troubleshooting lists every error class with its hint", "[common][hints]") {
  const std::string readme = read_text(kRoot / "README.md");
  const std::string begin = "<!-- error classes: begin -->\n";
  const std::string end = "<!-- error classes: end -->";
  const auto section = readme.find("\n## Troubleshooting");
  REQUIRE(section != std::string::npos);
  const auto from = readme.find(begin, section);
  const auto to = readme.find(end, section);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  const auto next_section = readme.find("\n## ", section + 1);
  CHECK((next_section == std::string::npos || to < next_section));
  const std::string listed = readme.substr(from + begin.size(), to - from - begin.size());
  // On failure, paste the expected text between the markers.
  INFO("expected between the markers:\n" << troubleshooting_list());
  CHECK(listed == troubleshooting_list());
}
