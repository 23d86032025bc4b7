#pragma once
// The one configuration of prefect-cycle. Built once by load_config() from the
// environment and the command-line flags (a flag beats its variable), validated
// there, and trusted everywhere else. Nothing outside src/config/ reads the
// environment.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/redact.hpp"
#include "log/logger.hpp"
#include "prefect/state_type.hpp"

namespace pc {

// `flow-name/deployment-name`, as PREFECT_TRIGGER_DEPLOYMENTS lists them.
struct DeploymentRef {
  std::string flow;
  std::string deployment;
  std::string full_name() const { return flow + "/" + deployment; }
  bool operator==(const DeploymentRef&) const = default;
};

enum class AutoPause { kOff, kOn, kForce };

enum class InstallerChoice { kAuto, kUv, kPip };

struct Config {
  // --- Prefect API
  std::string api_url;          // PREFECT_API_URL, no trailing slash
  std::string api_key;          // secret
  std::string api_auth_string;  // secret, "user:pass"; wins over api_key
  std::filesystem::path ssl_cert_file;
  bool tls_insecure_skip_verify = false;
  std::chrono::seconds request_timeout{30};
  int client_max_retries = 5;  // PREFECT_CLIENT_MAX_RETRIES, Prefect's own
  int max_connections = 16;    // API requests in flight at once

  // --- pool and worker
  std::string work_pool = "default-agent-pool";
  std::vector<std::string> work_queues;  // empty = all queues of the pool
  std::string worker_name;               // default "prefect-cycle-<hostname>"
  std::string worker_type = "process";
  std::chrono::seconds prefetch{120};
  int flow_limit = 5;
  std::chrono::seconds heartbeat_interval{30};
  std::chrono::seconds query_interval{10};  // run-forever poll interval
  int max_consecutive_failures = 10;
  bool run_forever = false;
  bool work_pool_create = false;
  bool drain = false;
  std::chrono::seconds grace{20};  // SIGTERM -> SIGKILL for runs we stop
  bool recover_stale_runs = true;  // CRASH runs a killed cycle left behind
  bool send_logs = true;           // the worker's lines on each run's Logs tab
  bool emit_events = true;         // the worker's events and the cycle event

  // --- cycle
  std::vector<DeploymentRef> trigger_deployments;
  bool wait_for_completion = true;       // default: !run_forever
  std::chrono::seconds wait_timeout{0};  // 0 = none
  std::chrono::seconds wait_poll{10};
  std::vector<StateType> active_state_types{StateType::kPending, StateType::kRunning,
                                            StateType::kCancelling};
  AutoPause auto_pause = AutoPause::kOn;  // default: off when run_forever
  bool dry_run = false;

  // --- repository preflight and code sync
  std::string repository;  // may contain user:pass@ (redacted)
  std::string branch = "main";
  bool verify_repository = true;
  std::string github_token;        // secret
  std::filesystem::path code_dir;  // empty = no sync
  bool install_requirements = true;
  std::string requirements_file = "requirements.txt";
  bool install_editable = false;
  InstallerChoice installer = InstallerChoice::kAuto;  // PREFECT_CYCLE_INSTALLER
  // PREFECT_CYCLE_CACHE_DIR, else <RAILWAY_VOLUME_MOUNT_PATH>/prefect-cycle-cache;
  // empty = no cache that outlives the container.
  std::filesystem::path cache_dir;
  std::chrono::seconds git_timeout{60};

  // --- database
  std::string database_url;  // DATABASE_URL, or DATABASE_PUBLIC_URL when unset
  bool database_url_from_public = false;
  bool check_database = false;

  // --- local
  std::string python = "python3";            // interpreter for flow runs, pip, doctor
  bool warm_start = false;                   // PREFECT_CYCLE_WARM_START
  std::vector<std::string> preload_modules;  // PREFECT_CYCLE_PRELOAD_MODULES
  std::filesystem::path summary_file;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;  // default: see default_log_format()

  // --- monitoring (src/monitor/)
  std::string ping_url;         // secret: its path is the check's token
  std::string pushgateway_url;  // may contain user:pass@ (redacted)
  std::string pushgateway_job = "prefect_cycle";
  // Grouping labels after the job; default: pool=<work_pool>.
  std::vector<std::pair<std::string, std::string>> pushgateway_grouping;

  // Warnings found while loading (e.g. an API URL without /api), to be logged.
  std::vector<std::string> warnings;
  // The secrets of this configuration, to redact from everything we print.
  std::shared_ptr<Redactor> redactor = std::make_shared<Redactor>();
};

enum class Origin { kDefault, kEnv, kFlag };

// One configuration value as `prefect-cycle config` shows it.
struct ConfigEntry {
  std::string variable;  // e.g. PREFECT_WORK_POOL
  std::string flag;      // e.g. --pool
  std::string value;     // redacted display value
  Origin origin = Origin::kDefault;
  std::string source;  // the env variable or flag that supplied it (aliases)
};

using Environment = std::map<std::string, std::string>;

// Raw flag values given on the command line, keyed by flag name ("--pool").
using FlagValues = std::map<std::string, std::string>;

struct LoadedConfig {
  Config config;
  std::vector<ConfigEntry> entries;  // in table order
};

// What the process sees around it, beyond its environment variables: it
// decides defaults such as the log format.
struct Surroundings {
  bool stderr_is_tty = false;
  bool in_container = false;  // /.dockerenv or /run/.containerenv exists
  static Surroundings detect();
};

// The log format when PREFECT_WORKER_CYCLE_LOG_FORMAT is unset, and why:
// JSON on Railway (RAILWAY_* variables), on Kubernetes (KUBERNETES_SERVICE_HOST)
// and in a container whose stderr is not a terminal -- where the lines are read
// by a log viewer that understands JSON levels --, text everywhere else.
std::pair<LogFormat, std::string> default_log_format(const Environment& env,
                                                     const Surroundings& around);

// Builds and validates the configuration. Throws pc::Error (ExitCode::kUsage)
// naming the variable or flag, the bad value, and what is allowed.
LoadedConfig load_config(const Environment& env, const FlagValues& flags,
                         const Surroundings& around = Surroundings::detect());

// A Prefect Cloud workspace API path: /api/accounts/<id>/workspaces/<id>.
bool is_cloud_workspace_path(std::string_view path);
// Whether PREFECT_API_URL points at Prefect Cloud (a workspace API): no
// /admin/version there, and every feature of the newest release.
bool is_prefect_cloud(std::string_view api_url);

// The process environment as a map (the only reader of `environ`).
Environment process_environment();

}  // namespace pc
