#include "cli/on_demand.hpp"

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "cli/api_stack.hpp"
#include "common/error.hpp"
#include "prefect/automations.hpp"
#include "prefect/client.hpp"
#include "prefect/server_version.hpp"

namespace pc {
namespace {

constexpr std::string_view kWebhookSlug = "webhook";
constexpr int kDebounceMax = 3600;

nlohmann::json read_cronjob_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw usage_error("on-demand --k8s-cronjob-file: cannot read \"" + path +
                          "\" (write it with kubectl get cronjob NAME -n NAMESPACE -o json > "
                          "FILE)",
                      Hint::kConfigValue);
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw usage_error("on-demand --k8s-cronjob-file: \"" + path + "\" is not JSON (" + e.what() +
                          "); write it with kubectl get cronjob NAME -o json",
                      Hint::kConfigValue);
  }
}

// The block's data for the screen: its URL and header values as ***.
nlohmann::json shown_block_data(nlohmann::json data) {
  for (auto& [name, value] : data["headers"].items()) {
    if (name != "Content-Type") {
      value = "***";
    }
  }
  return data;
}

}  // namespace

CLI::App* add_on_demand_subcommand(CLI::App& app, OnDemandFlags& flags) {
  auto* sub = app.add_subcommand(
      "on-demand",
      "set up the automation by which the Prefect server starts a cycle when a run is "
      "scheduled in the pool (token in " +
          std::string(kPlatformTokenVariable) + ")");
  sub->add_option("--platform", flags.platform, "railway or kubernetes");
  sub->add_option("--railway-service-instance-id", flags.railway_service_instance_id,
                  "the cron service's instance id (Railway)");
  sub->add_option("--railway-api-url", flags.railway_api_url, "Railway's GraphQL endpoint")
      ->default_str(std::string(kRailwayApiUrl));
  sub->add_option("--k8s-api-server", flags.k8s_api_server,
                  "the Kubernetes API server, https://host:port, as the Prefect server reaches it");
  sub->add_option("--k8s-namespace", flags.k8s_namespace,
                  "the CronJob's namespace (default: the file's, else default)");
  sub->add_option("--k8s-cronjob-file", flags.k8s_cronjob_file,
                  "the CronJob as `kubectl get cronjob NAME -o json` writes it");
  sub->add_flag("--k8s-skip-tls-verify", flags.k8s_skip_tls_verify,
                "the Prefect server does not verify the API server's certificate");
  sub->add_option("--debounce", flags.debounce_seconds,
                  "seconds after a start during which new runs start no other cycle")
      ->default_str("10");
  sub->add_flag("--dry-run", flags.dry_run, "print what would change, secrets as ***");
  sub->add_flag("--remove", flags.remove, "delete the automation and the block");
  return sub;
}

OnDemandOptions on_demand_options(const OnDemandFlags& flags, const Config& config,
                                  const Environment& env) {
  OnDemandOptions options;
  if (flags.platform == "railway") {
    options.platform = Platform::kRailway;
  } else if (flags.platform == "kubernetes") {
    options.platform = Platform::kKubernetes;
  } else if (!flags.remove || !flags.platform.empty()) {
    throw usage_error("on-demand --platform: \"" + flags.platform +
                          "\" is not a platform (expected railway or kubernetes)",
                      Hint::kConfigValue);
  }
  if (flags.debounce_seconds < 1 || flags.debounce_seconds > kDebounceMax) {
    throw usage_error("on-demand --debounce: \"" + std::to_string(flags.debounce_seconds) +
                          "\" is out of range (expected 1.." + std::to_string(kDebounceMax) +
                          " seconds)",
                      Hint::kConfigValue);
  }
  options.pool = config.work_pool;
  options.railway_service_instance_id = flags.railway_service_instance_id;
  options.railway_api_url = flags.railway_api_url;
  options.k8s_api_server = flags.k8s_api_server;
  options.k8s_namespace = flags.k8s_namespace;
  options.k8s_skip_tls_verify = flags.k8s_skip_tls_verify;
  options.debounce = std::chrono::seconds(flags.debounce_seconds);
  if (flags.remove) {
    return options;
  }
  if (options.platform == Platform::kKubernetes && !flags.k8s_cronjob_file.empty()) {
    options.k8s_cronjob = read_cronjob_file(flags.k8s_cronjob_file);
  }
  if (auto it = env.find(std::string(kPlatformTokenVariable)); it != env.end()) {
    options.token = it->second;
  }
  return options;
}

ExitCode apply_on_demand(ApiClient& api, const OnDemandOptions& options, bool cloud, bool dry_run,
                         bool remove, std::ostream& out) {
  PrefectClient client(api);
  if (!cloud) {
    const std::string version = client.read_server_version();
    if (!features_of(ServerVersion::parse(version)).events) {
      out << "on-demand: the server is Prefect " << version
          << ", which has no automations (they came with Prefect 3.0): nothing changed; runs "
             "start at the next cron tick\n";
      return ExitCode::kApi;
    }
  }
  auto pool = client.read_work_pool(options.pool);
  if (!pool) {
    throw usage_error(
        "PREFECT_WORK_POOL: work pool \"" + options.pool + "\" not found at " + api.base_url(),
        Hint::kPoolNotFound);
  }
  OnDemandOptions wanted = options;
  wanted.pool_id = pool->id;

  AutomationsClient automations(api);
  const std::string block_name = on_demand_block_name(wanted.pool);
  const std::string automation_name = on_demand_automation_name(wanted.pool);
  auto automation = automations.find_automation(automation_name);
  auto block = automations.find_block(std::string(kWebhookSlug), block_name);
  const char* would = dry_run ? "would be " : "";

  if (remove) {
    if (automation) {
      if (!dry_run) {
        automations.delete_automation(automation->value("id", ""));
      }
      out << "automation \"" << automation_name << "\": " << would << "deleted\n";
    } else {
      out << "automation \"" << automation_name << "\": not there\n";
    }
    if (block) {
      if (!dry_run) {
        automations.delete_block(block->value("id", ""));
      }
      out << "block webhook/" << block_name << ": " << would << "deleted\n";
    } else {
      out << "block webhook/" << block_name << ": not there\n";
    }
    return ExitCode::kOk;
  }

  const PlatformRequest request = platform_request(wanted);
  const nlohmann::json data = webhook_block_data(wanted, request);
  auto type_id = automations.block_type_id(std::string(kWebhookSlug));
  if (!type_id) {
    throw api_error("the server at " + api.base_url() +
                        " has no Webhook block type registered (GET /block_types/slug/webhook "
                        "answered 404): start it with PREFECT_API_BLOCKS_REGISTER_ON_START=true "
                        "or run `prefect block register -m prefect.blocks.webhook`",
                    Hint::kApiAnswer);
  }

  std::string block_id = block ? block->value("id", "") : "(the new block's id)";
  if (!block) {
    if (!dry_run) {
      block_id = automations.create_block(block_name, *type_id,
                                          automations.block_schema_id(*type_id), data);
    }
    out << "block webhook/" << block_name << ": " << would << "created\n";
  } else if (block->value("data", nlohmann::json::object()) != data) {
    if (!dry_run) {
      automations.replace_block_data(block_id, data);
    }
    out << "block webhook/" << block_name << ": " << would << "updated\n";
  } else {
    out << "block webhook/" << block_name << ": unchanged\n";
  }
  if (dry_run) {
    out << "  " << shown_block_data(data).dump() << "\n";
  }

  const nlohmann::json body = automation_body(wanted, request, block_id);
  if (!automation) {
    std::string id = dry_run ? "" : automations.create_automation(body);
    out << "automation \"" << automation_name << "\": " << would << "created"
        << (id.empty() ? "" : " (id " + id + ")") << "\n";
  } else if (spec_of(*automation) != spec_of(body) || !automation->value("enabled", false)) {
    if (!dry_run) {
      automations.replace_automation(automation->value("id", ""), body);
    }
    out << "automation \"" << automation_name << "\": " << would << "updated\n";
  } else {
    out << "automation \"" << automation_name << "\": unchanged\n";
  }
  if (dry_run) {
    out << body.dump(2) << "\n";
  }
  return ExitCode::kOk;
}

ExitCode on_demand_command(const Config& config, const OnDemandFlags& flags, std::ostream& out) {
  OnDemandOptions options = on_demand_options(flags, config, process_environment());
  config.redactor->add_secret(options.token);
  Logger log(config.log_level, config.log_format, config.redactor, LogStreams::kStderr);
  ApiStack stack(config, log);
  std::ostringstream text;
  ExitCode code = ExitCode::kOk;
  try {
    code = apply_on_demand(stack.api(), options, is_prefect_cloud(config.api_url), flags.dry_run,
                           flags.remove, text);
  } catch (...) {
    out << config.redactor->redact(text.str());
    throw;
  }
  out << config.redactor->redact(text.str());
  return code;
}

}  // namespace pc
