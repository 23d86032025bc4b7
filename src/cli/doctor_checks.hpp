#pragma once
// The checks of `prefect-cycle doctor` (see doctor.hpp), internal to src/cli/:
// the API's checks are doctor_api.cpp, the local ones and the report doctor.cpp.

#include <netdb.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>

#include "cli/api_stack.hpp"
#include "cli/doctor.hpp"
#include "common/error.hpp"

namespace pc::doctor_detail {

struct UrlParts {
  std::string scheme;
  std::string host;
  std::string port;
  std::string path;
};

// The parts of an http(s) URL to connect to; nullopt for anything else.
std::optional<UrlParts> split_url(const std::string& url);

// Connects to host:port within `timeout`; returns an error text or "".
std::string tcp_connect(const addrinfo* addresses, std::chrono::milliseconds timeout);

// One run of every check; run() hands the report over.
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

  DoctorReport run();

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

  bool check_url();
  bool check_network();
  bool check_health();
  void check_version();
  void auth_failure(const Error& e);
  bool check_pool();
  void check_deployments();
  // The on-demand automation of the pool (doctor_on_demand.cpp): whether it
  // exists and is enabled; never a failure (the cron tick still runs).
  void check_on_demand();
  void check_repository();
  void check_database_reachable();
  void check_python();
  // Only Prefect's git_clone pull step runs git (our repository check uses
  // libgit2): an image built with PREFECT_CYCLE_INSTALL_GIT=false is not a
  // failure.
  void check_git();
  // No HTTP request: every request to a ping URL signals the check
  // (healthchecks.io has no non-signalling endpoint; even /start opens a run
  // that would then time out). DNS and TCP connect only.
  void check_ping_url();
  // GET <base>/-/ready: pushes nothing.
  void check_pushgateway();

  const Config& config_;
  Logger log_;
  ApiStack stack_;
  DoctorReport report_;
  std::optional<UrlParts> url_;
  bool auth_checked_ = false;
  bool has_automations_ = true;  // the server's release (check_version)
};

}  // namespace pc::doctor_detail
