// The API checks of `doctor`: URL shape, DNS, TCP, health, version, auth,
// pool, deployments.
#include "cli/doctor_checks.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/api_stack.hpp"
#include "common/error.hpp"
#include "common/url.hpp"
#include "cycle/plan_reads.hpp"
#include "prefect/server_version.hpp"

namespace pc {
namespace doctor_detail {

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

// The shape of PREFECT_API_URL; url_ is set when it has a host to reach.
bool Doctor::check_url() {
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

bool Doctor::check_network() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(url_->host.c_str(), url_->port.c_str(), &hints, &result);
  if (rc != 0) {
    add("api.dns", false, "cannot resolve host \"" + url_->host + "\": " + gai_strerror(rc),
        "check the host name in PREFECT_API_URL (--api-url) and the machine's DNS", ExitCode::kApi);
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

bool Doctor::check_health() {
  const bool https = url_->scheme == "https";
  try {
    auto response = stack_.api().request("GET", "/health", std::nullopt,
                                         {.retry = false, .deadline = std::nullopt});
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

void Doctor::check_version() {
  if (is_prefect_cloud(config_.api_url)) {
    skip("api.version", "Prefect Cloud (no /admin/version)");
    return;
  }
  try {
    // The same rule as the cycle's (prefect/server_version.hpp): doctor and
    // run agree on what is supported.
    std::string version = stack_.client().read_server_version();
    ServerFeatures features = features_of(ServerVersion::parse(version));
    has_automations_ = features.events;
    std::string detail = "server is Prefect " + version;
    if (!features.missing().empty()) {
      detail += "; " + features.missing();
    }
    add("api.version", features.supported, detail,
        features.supported ? ""
                           : "prefect-cycle supports Prefect servers 2.20 to 3.9: upgrade the "
                             "server to 2.20 or newer",
        ExitCode::kApi);
  } catch (const Error& e) {
    auth_failure(e);
  }
}

void Doctor::auth_failure(const Error& e) {
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

bool Doctor::check_pool() {
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

void Doctor::check_deployments() {
  if (config_.trigger_deployments.empty()) {
    skip("deployments", "PREFECT_TRIGGER_DEPLOYMENTS is empty");
    return;
  }
  for (const auto& ref : config_.trigger_deployments) {
    std::string name = "deployment " + ref.full_name();
    try {
      auto deployment = find_trigger_deployment(stack_.client(), ref);
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
        add(name, true, "exists in work pool \"" + config_.work_pool + "\"", "", ExitCode::kUsage);
      }
    } catch (const Error& e) {
      add(name, false, e.message(), std::string(hint_text(e.hint())), ExitCode::kApi);
    }
  }
}

}  // namespace doctor_detail
}  // namespace pc
