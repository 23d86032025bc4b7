#include "cli/doctor.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/api_stack.hpp"
#include "cli/doctor_checks.hpp"
#include "common/error.hpp"
#include "common/path_search.hpp"
#include "prefect/server_version.hpp"
#include "process/process.hpp"
#include "repo/preflight.hpp"

// For the monitor.ping and monitor.pushgateway checks.
#include "monitor/pushgateway.hpp"

namespace pc {
namespace doctor_detail {
namespace {

// What spawning `program` would find.
bool on_path(const std::string& program, const Environment& env) {
  auto it = env.find("PATH");
  return !search_path(program, it == env.end() ? kDefaultPath : it->second).program.empty();
}

}  // namespace

DoctorReport Doctor::run() {
  add("config", true, "configuration valid", "", ExitCode::kUsage);
  bool url_ok = check_url();
  bool reachable = url_ && check_network();
  if (reachable && !url_ok) {
    // A wrong path reaches some server, but every answer would mislead.
    not_run({"api.health", "api.version", "api.auth", "pool", "deployments"},
            "fix PREFECT_API_URL first");
  } else if (reachable && check_health()) {
    check_version();
    if (check_pool()) {
      check_deployments();
      check_on_demand();
    }
  } else {
    not_run({"api.version", "api.auth", "pool", "deployments"}, "the API is not reachable");
  }
  check_repository();
  check_database_reachable();
  check_python();
  check_git();
  check_ping_url();
  check_pushgateway();
  return std::move(report_);
}

void Doctor::check_repository() {
  if (config_.repository.empty() || !config_.verify_repository) {
    skip("repository", config_.repository.empty() ? "PREFECT_WORKER_REPOSITORY is not set"
                                                  : "PREFECT_WORKER_VERIFY_REPOSITORY is off");
    return;
  }
  try {
    auto heads = list_remote_heads(config_.repository, config_.github_token, config_.git_timeout);
    bool found = std::find(heads.branches.begin(), heads.branches.end(), config_.branch) !=
                 heads.branches.end();
    add("repository", found,
        found ? "branch \"" + config_.branch + "\" present in " + config_.repository
              : "branch \"" + config_.branch + "\" not found in " + config_.repository,
        found ? "" : std::string(hint_text(Hint::kBranchNotFound)), ExitCode::kPreflight);
  } catch (const Error& e) {
    add("repository", false, e.message(), std::string(hint_text(e.hint())), ExitCode::kPreflight);
  }
}

void Doctor::check_database_reachable() {
  if (!config_.check_database) {
    skip("database", "PREFECT_WORKER_CHECK_DATABASE is off");
    return;
  }
  if (config_.database_url.empty()) {
    add("database", false, "PREFECT_WORKER_CHECK_DATABASE is on but DATABASE_URL is not set",
        std::string(hint_text(Hint::kDatabaseMissing)), ExitCode::kPreflight);
    return;
  }
  try {
    check_database(config_.database_url, std::chrono::seconds(10));
    add("database", true, "SELECT 1 answered", "", ExitCode::kPreflight);
  } catch (const Error& e) {
    add("database", false, e.message(), std::string(hint_text(e.hint())), ExitCode::kPreflight);
  }
}

void Doctor::check_python() {
  SpawnOptions options;
  options.argv = {config_.python, "-c", "import prefect; print(prefect.__version__)"};
  std::string output;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  ExitStatus status = run_streaming(
      options,
      [&output](std::string_view line, bool) {
        if (output.size() < 4096) {
          output += std::string(line) + "\n";
        }
      },
      [deadline] { return std::chrono::steady_clock::now() > deadline; },
      std::chrono::milliseconds(1000));
  std::string last_line;
  if (auto end = output.find_last_not_of('\n'); end != std::string::npos) {
    auto start = output.rfind('\n', end);
    last_line = output.substr(start == std::string::npos ? 0 : start + 1,
                              end - (start == std::string::npos ? 0 : start + 1) + 1);
  }
  if (status.exited() && status.code == 0) {
    add("python", true, config_.python + " imports Prefect " + last_line, "", ExitCode::kPreflight);
  } else if (status.exited() && status.code == 127) {
    add("python", false, "PREFECT_WORKER_PYTHON: \"" + config_.python + "\" not found",
        std::string(hint_text(Hint::kPython)), ExitCode::kPreflight);
  } else {
    add("python", false,
        config_.python + " cannot import Prefect (" + status.describe() + "): " + last_line,
        std::string(hint_text(Hint::kPython)), ExitCode::kPreflight);
  }
}

// Only Prefect's git_clone pull step runs git (our repository check uses
// libgit2): an image built with PREFECT_CYCLE_INSTALL_GIT=false is not a
// failure.
void Doctor::check_git() {
  if (on_path("git", process_environment())) {
    add("git", true, "git is on PATH", "", ExitCode::kPreflight);
  } else {
    skip("git",
         "git is not on PATH: deployments with a git_clone pull step need it (the "
         "image's PREFECT_CYCLE_INSTALL_GIT build argument); nothing else does");
  }
}

// No HTTP request: every request to a ping URL signals the check
// (healthchecks.io has no non-signalling endpoint; even /start opens a run
// that would then time out). DNS and TCP connect only.
void Doctor::check_ping_url() {
  if (config_.ping_url.empty()) {
    skip("monitor.ping", "PREFECT_CYCLE_PING_URL is not set");
    return;
  }
  auto parts = split_url(config_.ping_url);
  if (!parts) {
    add("monitor.ping", false, "PREFECT_CYCLE_PING_URL is not an http(s) URL",
        "set it to the check's ping URL, e.g. https://hc-ping.com/<uuid>", ExitCode::kUsage);
    return;
  }
  const std::string where = parts->host + ":" + parts->port;
  const std::string fix =
      "check the host of PREFECT_CYCLE_PING_URL and that this machine may reach it (proxy, "
      "firewall)";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (int rc = getaddrinfo(parts->host.c_str(), parts->port.c_str(), &hints, &result); rc != 0) {
    add("monitor.ping", false,
        "cannot resolve ping host \"" + parts->host + "\": " + gai_strerror(rc), fix,
        ExitCode::kApi);
    return;
  }
  std::string error = tcp_connect(result, kMonitorAttemptTimeout);
  freeaddrinfo(result);
  if (!error.empty()) {
    add("monitor.ping", false, "cannot connect to ping host " + where + ": " + error, fix,
        ExitCode::kApi);
    return;
  }
  add("monitor.ping", true,
      "ping host " + where +
          " accepts connections (DNS and TCP only: any HTTP request to a ping URL would "
          "signal the check, so none is sent)",
      "", ExitCode::kApi);
}

// GET <base>/-/ready: pushes nothing.
void Doctor::check_pushgateway() {
  if (config_.pushgateway_url.empty()) {
    skip("monitor.pushgateway", "PREFECT_CYCLE_PUSHGATEWAY_URL is not set");
    return;
  }
  CurlTransport transport(TlsOptions{}, kMonitorAttemptTimeout);
  InterruptibleSleeper sleeper(nullptr);
  SteadyClock clock;
  HttpRequest request;
  request.method = "GET";
  request.url = pushgateway_ready_url(config_.pushgateway_url);
  DeliveryBounds once;
  once.retry_delays.clear();
  once.budget = kMonitorAttemptTimeout;
  DeliveryResult result = deliver_bounded(transport, sleeper, clock, request, once);
  const std::string shown = "GET " + pushgateway_url_for_display(request.url);
  if (result.delivered) {
    add("monitor.pushgateway", true,
        shown + " answered HTTP " + std::to_string(result.status) + " in " +
            std::to_string(result.elapsed.count()) + " ms",
        "", ExitCode::kApi);
    return;
  }
  add("monitor.pushgateway", false, shown + " failed: " + result.error,
      result.status != 0 ? "is PREFECT_CYCLE_PUSHGATEWAY_URL the Pushgateway's base URL "
                           "(e.g. http://pushgateway:9091, no /metrics path)?"
                         : "is the Pushgateway running and reachable from here?",
      ExitCode::kApi);
}

}  // namespace doctor_detail

using doctor_detail::Doctor;

ExitCode DoctorReport::exit_code() const {
  for (const auto& check : checks) {
    if (!check.ok && !check.skipped) {
      return check.failure_class;
    }
  }
  return ExitCode::kOk;
}

void DoctorReport::print_text(std::ostream& out) const {
  for (const auto& check : checks) {
    const char* mark = check.skipped ? "-" : (check.ok ? "\u2713" : "\u2717");
    out << mark << " " << check.name << ": " << check.detail;
    if (!check.ok && !check.skipped && !check.fix.empty()) {
      out << " \u2014 fix: " << check.fix;
    }
    out << "\n";
  }
}

void DoctorReport::print_json(std::ostream& out) const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& check : checks) {
    list.push_back({{"name", check.name},
                    {"ok", check.ok},
                    {"skipped", check.skipped},
                    {"detail", check.detail},
                    {"fix", check.fix}});
  }
  out << nlohmann::json{{"ok", exit_code() == ExitCode::kOk},
                        {"exit_code", to_int(exit_code())},
                        {"checks", list}}
             .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
      << "\n";
}

DoctorReport run_doctor(const Config& config) {
  return Doctor(config).run();
}

DoctorReport doctor_config_failure(const std::string& message, std::string_view fix) {
  DoctorReport report;
  report.checks.push_back({"config", false, false, message, std::string(fix), ExitCode::kUsage});
  return report;
}

}  // namespace pc
