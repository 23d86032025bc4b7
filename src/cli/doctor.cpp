#include "cli/doctor.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/api_stack.hpp"
#include "common/error.hpp"
#include "common/path_search.hpp"
#include "common/url.hpp"
#include "prefect/server_version.hpp"
#include "process/process.hpp"
#include "repo/preflight.hpp"

// For the monitor.ping and monitor.pushgateway checks.
#include "monitor/pushgateway.hpp"

namespace pc {
namespace {

struct UrlParts {
  std::string scheme;
  std::string host;
  std::string port;
  std::string path;
};

// The parts of an http(s) URL to connect to; nullopt for anything else.
std::optional<UrlParts> split_url(const std::string& url) {
  auto parsed = parse_http_url(url);
  if (!parsed) {
    return std::nullopt;
  }
  UrlParts parts{parsed->scheme, parsed->host, parsed->port, parsed->path};
  if (parts.host.front() == '[') {
    parts.host = parts.host.substr(1, parts.host.size() - 2);
  }
  if (parts.port.empty()) {
    parts.port = parts.scheme == "https" ? "443" : "80";
  }
  return parts;
}

// Connects to host:port within `timeout`; returns an error text or "".
std::string tcp_connect(const addrinfo* addresses, std::chrono::milliseconds timeout) {
  std::string last_error = "no address";
  for (const addrinfo* ai = addresses; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 0) {
        last_error = "timed out after " + std::to_string(timeout.count()) + " ms";
        close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      close(fd);
      return "";
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  return last_error;
}

// What spawning `program` would find.
bool on_path(const std::string& program, const Environment& env) {
  auto it = env.find("PATH");
  return !search_path(program, it == env.end() ? kDefaultPath : it->second).program.empty();
}

class Doctor {
 public:
  explicit Doctor(const Config& config)
      : config_(config),
        log_(Logger::null()),
        // One attempt per check, bounded by PREFECT_API_REQUEST_TIMEOUT: doctor
        // reports what it sees instead of retrying it away, but a slow API
        // (Prefect Cloud, another region) gets the time a cycle would give it.
        stack_(config, log_,
               RetryPolicy{
                   1, std::chrono::milliseconds(0), 1.0, std::chrono::milliseconds(0), 0.0,
                   std::chrono::duration_cast<std::chrono::milliseconds>(config.request_timeout)}) {
  }

  DoctorReport run() {
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

 private:
  void add(const std::string& name, bool ok, const std::string& detail, const std::string& fix,
           ExitCode failure_class) {
    report_.checks.push_back({name, ok, false, detail, fix, failure_class});
  }
  void skip(const std::string& name, const std::string& why) {
    report_.checks.push_back({name, true, true, why, "", ExitCode::kOk});
  }
  void not_run(std::initializer_list<const char*> names, const std::string& why) {
    for (const char* name : names) {
      report_.checks.push_back({name, false, true, "not checked: " + why, "", ExitCode::kApi});
    }
  }

  // The shape of PREFECT_API_URL; url_ is set when it has a host to reach.
  bool check_url() {
    auto parts = split_url(config_.api_url);
    url_ = parts;
    bool cloud = is_prefect_cloud(config_.api_url);
    std::string_view path = parts ? std::string_view(parts->path) : std::string_view();
    if (path.size() > 1 && path.back() == '/') {
      path.remove_suffix(1);
    }
    if (parts && cloud && !is_cloud_workspace_path(path)) {
      add("api.url", false,
          "PREFECT_API_URL \"" + config_.api_url + "\" is a Prefect Cloud URL without a workspace",
          "set PREFECT_API_URL (--api-url) to "
          "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace> (the "
          "workspace URL Prefect Cloud shows in its settings)",
          ExitCode::kUsage);
      return false;
    }
    bool api_suffix = parts && (parts->path == "/api" || parts->path == "/api/" || cloud);
    if (!api_suffix) {
      add("api.url", false, "PREFECT_API_URL \"" + config_.api_url + "\" does not end in /api",
          "set PREFECT_API_URL (--api-url) to http(s)://host:port/api (self-hosted) or "
          "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace> (Cloud)",
          ExitCode::kUsage);
    } else {
      add("api.url", true,
          std::string(cloud ? "Prefect Cloud workspace URL " : "self-hosted API URL ") +
              config_.api_url,
          "", ExitCode::kUsage);
    }
    return api_suffix;
  }

  bool check_network() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    int rc = getaddrinfo(url_->host.c_str(), url_->port.c_str(), &hints, &result);
    if (rc != 0) {
      add("api.dns", false, "cannot resolve host \"" + url_->host + "\": " + gai_strerror(rc),
          "check the host name in PREFECT_API_URL (--api-url) and the machine's DNS",
          ExitCode::kApi);
      return false;
    }
    add("api.dns", true, "host \"" + url_->host + "\" resolves", "", ExitCode::kApi);
    auto timeout =
        std::min<std::chrono::milliseconds>(config_.request_timeout, std::chrono::seconds(10));
    std::string error = tcp_connect(result, timeout);
    freeaddrinfo(result);
    if (!error.empty()) {
      add("api.tcp", false, "cannot connect to " + url_->host + ":" + url_->port + ": " + error,
          "check the port in PREFECT_API_URL (--api-url), that the Prefect server runs and "
          "listens on it (prefect server start --host 0.0.0.0 for remote access), and the "
          "firewall",
          ExitCode::kApi);
      return false;
    }
    add("api.tcp", true, "connected to " + url_->host + ":" + url_->port, "", ExitCode::kApi);
    return true;
  }

  bool check_health() {
    const bool https = url_->scheme == "https";
    try {
      auto response = stack_.api().request("GET", "/health", std::nullopt, {false, {}});
      if (https) {
        add("api.tls", true,
            config_.tls_insecure_skip_verify ? "TLS handshake ok (verification OFF)"
                                             : "TLS certificate verified",
            "", ExitCode::kApi);
      } else {
        skip("api.tls", "plain HTTP");
      }
      add("api.health", true, "GET /health answered " + response.body.dump(), "", ExitCode::kApi);
      return true;
    } catch (const Error& e) {
      const std::string& what = e.message();
      bool tls_problem = e.hint() == Hint::kApiTls || what.find("SSL") != std::string::npos ||
                         what.find("certificate") != std::string::npos;
      if (https && tls_problem) {
        add("api.tls", false, what, std::string(hint_text(Hint::kApiTls)), ExitCode::kApi);
        return false;
      }
      add("api.health", false, what,
          "the host answers but not as a Prefect API: check the path of PREFECT_API_URL "
          "(--api-url; it ends in /api)",
          ExitCode::kApi);
      return false;
    }
  }

  void check_version() {
    if (is_prefect_cloud(config_.api_url)) {
      skip("api.version", "Prefect Cloud (no /admin/version)");
      return;
    }
    try {
      // The same rule as the cycle's (prefect/server_version.hpp): doctor and
      // run agree on what is supported.
      std::string version = stack_.client().read_server_version();
      ServerFeatures features = features_of(ServerVersion::parse(version));
      std::string detail = "server is Prefect " + version;
      if (!features.missing().empty()) {
        detail += "; " + features.missing();
      }
      add("api.version", features.supported, detail,
          features.supported ? ""
                             : "prefect-cycle supports Prefect servers 2.20 to 3.8: upgrade the "
                               "server to 2.20 or newer",
          ExitCode::kApi);
    } catch (const Error& e) {
      auth_failure(e);
    }
  }

  void auth_failure(const Error& e) {
    const auto* status = dynamic_cast<const HttpStatusError*>(&e);
    if (status && (status->status() == 401 || status->status() == 403)) {
      std::string fix;
      if (status->status() == 403) {
        fix = "the credentials are valid but not allowed here: check the key's workspace and role";
      } else if (!config_.api_auth_string.empty()) {
        fix =
            "the server rejected PREFECT_API_AUTH_STRING (--api-auth-string): it must equal the "
            "server's PREFECT_SERVER_API_AUTH_STRING (user:pass)";
      } else if (!config_.api_key.empty()) {
        fix =
            "the server rejected PREFECT_API_KEY (--api-key): check the key is valid and belongs "
            "to the workspace in PREFECT_API_URL";
      } else {
        fix =
            "the server wants credentials: set PREFECT_API_AUTH_STRING=user:pass "
            "(--api-auth-string; self-hosted with PREFECT_SERVER_API_AUTH_STRING) or "
            "PREFECT_API_KEY (--api-key; Cloud)";
      }
      add("api.auth", false, e.message(), fix, ExitCode::kApi);
      auth_checked_ = true;
    } else {
      add("api.call", false, e.message(), std::string(hint_text(e.hint())), ExitCode::kApi);
    }
  }

  bool check_pool() {
    std::optional<WorkPool> pool;
    try {
      pool = stack_.client().read_work_pool(config_.work_pool);
    } catch (const Error& e) {
      auth_failure(e);
      return false;
    }
    if (!auth_checked_) {
      add("api.auth", true,
          config_.api_auth_string.empty() && config_.api_key.empty() ? "no credentials needed"
                                                                     : "credentials accepted",
          "", ExitCode::kApi);
    }
    if (!pool) {
      add("pool", false, "work pool \"" + config_.work_pool + "\" not found",
          "create it (prefect work-pool create " + config_.work_pool +
              " --type process), set PREFECT_WORK_POOL_CREATE=true (--create-pool), or correct "
              "PREFECT_WORK_POOL (--pool)",
          ExitCode::kUsage);
      return false;
    }
    std::string detail = "work pool \"" + pool->name + "\": type " + pool->type + ", " +
                         (pool->is_paused ? "paused (the cycle resumes it)" : "not paused") +
                         ", status " + pool->status;
    if (pool->status == "NOT_READY") {
      detail +=
          " (no worker has heartbeated within 3 heartbeat intervals: expected between "
          "cycles)";
    }
    bool type_ok = pool->type == config_.worker_type;
    add("pool", type_ok, detail,
        type_ok ? ""
                : "the pool's type is \"" + pool->type + "\" but PREFECT_WORKER_TYPE is \"" +
                      config_.worker_type + "\": set PREFECT_WORKER_TYPE=" + pool->type +
                      " (--worker-type)",
        ExitCode::kUsage);
    return true;
  }

  void check_deployments() {
    if (config_.trigger_deployments.empty()) {
      skip("deployments", "PREFECT_TRIGGER_DEPLOYMENTS is empty");
      return;
    }
    for (const auto& ref : config_.trigger_deployments) {
      std::string name = "deployment " + ref.full_name();
      try {
        auto deployment = stack_.client().read_deployment_by_name(ref.flow, ref.deployment);
        if (!deployment) {
          add(name, false, "deployment \"" + ref.full_name() + "\" not found",
              std::string(hint_text(Hint::kDeploymentNotFound)), ExitCode::kUsage);
        } else if (deployment->work_pool_name != config_.work_pool) {
          add(name, false,
              "deployment \"" + ref.full_name() + "\" belongs to work pool \"" +
                  deployment->work_pool_name + "\"",
              "this cycle drains \"" + config_.work_pool +
                  "\": its runs would wait for another worker; move the deployment to this "
                  "pool or remove it from PREFECT_TRIGGER_DEPLOYMENTS (--trigger)",
              ExitCode::kUsage);
        } else {
          add(name, true, "exists in work pool \"" + config_.work_pool + "\"", "",
              ExitCode::kUsage);
        }
      } catch (const Error& e) {
        add(name, false, e.message(), std::string(hint_text(e.hint())), ExitCode::kApi);
      }
    }
  }

  void check_repository() {
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

  void check_database_reachable() {
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

  void check_python() {
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
      add("python", true, config_.python + " imports Prefect " + last_line, "",
          ExitCode::kPreflight);
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
  // libgit2): an image built with INSTALL_GIT=false is not a failure.
  void check_git() {
    if (on_path("git", process_environment())) {
      add("git", true, "git is on PATH", "", ExitCode::kPreflight);
    } else {
      skip("git",
           "git is not on PATH: deployments with a git_clone pull step need it (the "
           "image's INSTALL_GIT build argument); nothing else does");
    }
  }

  // No HTTP request: every request to a ping URL signals the check
  // (healthchecks.io has no non-signalling endpoint; even /start opens a run
  // that would then time out). DNS and TCP connect only.
  void check_ping_url() {
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
  void check_pushgateway() {
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

  const Config& config_;
  Logger log_;
  ApiStack stack_;
  DoctorReport report_;
  std::optional<UrlParts> url_;
  bool auth_checked_ = false;
};

}  // namespace

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
