#pragma once
// `prefect-cycle on-demand`: sets up (or, with --remove, takes down) the
// Webhook block and the automation by which the Prefect server starts a
// cycle on the platform as soon as a run is scheduled in the pool (README,
// "On-demand ticks"). Idempotent: both are found by name; what already
// matches is left alone. --dry-run reads the server and prints what would
// change, secrets as ***.

#include <chrono>
#include <ostream>
#include <string>

#include "cli/on_demand_spec.hpp"
#include "common/exit_code.hpp"
#include "config/config.hpp"
#include "http/api_client.hpp"

namespace CLI {
class App;
}

namespace pc {

// The subcommand's own flags, as given (validated by on_demand_options()).
struct OnDemandFlags {
  std::string platform;  // railway | kubernetes
  std::string railway_service_instance_id;
  std::string railway_api_url = std::string(kRailwayApiUrl);
  std::string k8s_api_server;
  std::string k8s_namespace;
  std::string k8s_cronjob_file;
  bool k8s_skip_tls_verify = false;
  int debounce_seconds = 10;
  bool dry_run = false;
  bool remove = false;
};

// Registers `on-demand` and its flags on `app`, writing into `flags`.
CLI::App* add_on_demand_subcommand(CLI::App& app, OnDemandFlags& flags);

// The options from the flags, the pool of `config` and the token in `env`
// (PREFECT_CYCLE_PLATFORM_TOKEN; not needed for --remove). Throws
// pc::Error(kUsage) naming the flag or variable, the value and the fix.
OnDemandOptions on_demand_options(const OnDemandFlags& flags, const Config& config,
                                  const Environment& env);

// The work against the API: checks that the server has automations (a
// Prefect 2 server has none: says so, changes nothing, returns kApi), reads
// the pool, then creates, updates or deletes. `cloud`: Prefect Cloud (no
// /admin/version to read). Prints one line per object on `out`.
ExitCode apply_on_demand(ApiClient& api, const OnDemandOptions& options, bool cloud, bool dry_run,
                         bool remove, std::ostream& out);

// The subcommand: options, the API stack, apply_on_demand; its output with
// every secret redacted.
ExitCode on_demand_command(const Config& config, const OnDemandFlags& flags, std::ostream& out);

}  // namespace pc
