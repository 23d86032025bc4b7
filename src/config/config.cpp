#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <regex>
#include <sstream>

#include "common/error.hpp"
#include "common/host.hpp"
#include "common/spellcheck.hpp"
#include "common/text.hpp"
#include "common/url.hpp"
#include "config/monitor_values.hpp"
#include "config/settings.hpp"

extern char** environ;

namespace pc {

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> items;
  std::string item;
  std::stringstream stream{std::string(value)};
  while (std::getline(stream, item, ',')) {
    item = trim(item);
    if (!item.empty()) {
      items.push_back(item);
    }
  }
  return items;
}

// A Cloud workspace API path: /api/accounts/<id>/workspaces/<id>.
bool is_cloud_workspace_path(std::string_view path) {
  static const std::regex kWorkspace(R"(^/api/accounts/[^/]+/workspaces/[^/]+$)");
  return std::regex_match(path.begin(), path.end(), kWorkspace);
}

bool is_prefect_cloud(std::string_view api_url) {
  return api_url.find("/api/accounts/") != std::string_view::npos;
}

// --- value parsers shared by the settings table ---------------------------

bool parse_bool(const std::string& where, const std::string& value) {
  std::string v = ascii_lower(trim(value));
  if (v == "true" || v == "1" || v == "yes" || v == "on") {
    return true;
  }
  if (v == "false" || v == "0" || v == "no" || v == "off") {
    return false;
  }
  throw usage_error(
      where + ": invalid boolean \"" + value + "\" (expected true/false/1/0/yes/no/on/off)",
      Hint::kConfigValue);
}

int parse_int(const std::string& where, const std::string& value, int min, int max) {
  const std::string range = "(expected " + std::to_string(min) + ".." + std::to_string(max) + ")";
  std::string v = trim(value);
  std::size_t used = 0;
  long long parsed = 0;
  bool ok =
      !v.empty() && (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-' || v[0] == '+');
  if (ok) {
    try {
      parsed = std::stoll(v, &used);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || used != v.size()) {
    throw usage_error(where + ": invalid integer \"" + value + "\" " + range, Hint::kConfigValue);
  }
  if (parsed < min || parsed > max) {
    throw usage_error(where + ": " + v + " is out of range " + range, Hint::kConfigValue);
  }
  return static_cast<int>(parsed);
}

std::vector<StateType> parse_state_types(const std::string& where, const std::string& value) {
  std::vector<std::string> names;
  for (auto type : all_state_types()) {
    names.emplace_back(to_string(type));
  }
  std::vector<StateType> types;
  for (const auto& item : split_list(value)) {
    auto type = parse_state_type(item);
    if (!type) {
      std::string allowed;
      for (const auto& n : names) {
        allowed += (allowed.empty() ? "" : ", ") + n;
      }
      std::string message =
          where + ": unknown state type \"" + item + "\" (expected any of " + allowed + ")";
      if (auto guess = closest_match(item, names)) {
        message += "; did you mean \"" + *guess + "\"?";
      }
      throw usage_error(message, Hint::kConfigValue);
    }
    if (std::find(types.begin(), types.end(), *type) == types.end()) {
      types.push_back(*type);
    }
  }
  if (types.empty()) {
    throw usage_error(where + ": empty list \"" + value +
                          "\" (expected a comma list of state types, e.g. PENDING,RUNNING)",
                      Hint::kConfigValue);
  }
  return types;
}

std::vector<DeploymentRef> parse_deployments(const std::string& where, const std::string& value) {
  std::vector<DeploymentRef> refs;
  for (const auto& item : split_list(value)) {
    auto slash = item.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == item.size() ||
        item.find('/', slash + 1) != std::string::npos) {
      throw usage_error(
          where + ": invalid deployment \"" + item + "\" (expected flow-name/deployment-name)",
          Hint::kConfigValue);
    }
    DeploymentRef ref{trim(item.substr(0, slash)), trim(item.substr(slash + 1))};
    if (std::find(refs.begin(), refs.end(), ref) == refs.end()) {
      refs.push_back(ref);
    }
  }
  return refs;
}

std::string parse_api_url(const std::string& where, const std::string& value,
                          std::vector<std::string>& warnings) {
  std::string url = trim(value);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  auto parsed = parse_http_url(url);
  if (!parsed || url.find_first_of("?#") != std::string::npos) {
    throw usage_error(where + ": invalid URL \"" + redact_url_userinfo(value) +
                          "\" (expected http(s)://host[:port]/api, e.g. http://127.0.0.1:4200/api)",
                      Hint::kConfigValue);
  }
  if (parsed->path != "/api" && !is_cloud_workspace_path(parsed->path)) {
    warnings.push_back(where + " \"" + redact_url_userinfo(url) +
                       "\" does not end in /api: a self-hosted server's API is at "
                       "http(s)://host:port/api, Prefect Cloud's at "
                       "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace>");
  }
  return url;
}

LogLevel parse_log_level(const std::string& where, const std::string& value) {
  std::string v = ascii_lower(trim(value));
  if (v == "trace")
    return LogLevel::kTrace;
  if (v == "debug")
    return LogLevel::kDebug;
  if (v == "info")
    return LogLevel::kInfo;
  if (v == "warn" || v == "warning")
    return LogLevel::kWarn;
  if (v == "error")
    return LogLevel::kError;
  if (v == "critical")
    return LogLevel::kCritical;
  throw usage_error(where + ": invalid log level \"" + value +
                        "\" (expected trace, debug, info, warning, error or critical)",
                    Hint::kConfigValue);
}

LogFormat parse_log_format(const std::string& where, const std::string& value) {
  std::string v = ascii_lower(trim(value));
  if (v == "text")
    return LogFormat::kText;
  if (v == "json")
    return LogFormat::kJson;
  throw usage_error(where + ": invalid log format \"" + value + "\" (expected text or json)",
                    Hint::kConfigValue);
}

AutoPause parse_auto_pause(const std::string& where, const std::string& value) {
  if (ascii_lower(trim(value)) == "force") {
    return AutoPause::kForce;
  }
  try {
    return parse_bool(where, value) ? AutoPause::kOn : AutoPause::kOff;
  } catch (const Error&) {
    throw usage_error(where + ": invalid value \"" + value +
                          "\" (expected true/false/1/0/yes/no/on/off or force)",
                      Hint::kConfigValue);
  }
}

std::string require_non_empty(const std::string& where, const std::string& value,
                              const std::string& what) {
  std::string v = trim(value);
  if (v.empty()) {
    throw usage_error(where + ": empty value (expected " + what + ")", Hint::kConfigValue);
  }
  return v;
}

std::string worker_name_value(const std::string& where, const std::string& value) {
  std::string v = require_non_empty(where, value, "a worker name");
  if (v.find_first_of("/%") != std::string::npos) {
    throw usage_error(where + ": invalid worker name \"" + value +
                          "\" (Prefect forbids '/' and '%' in worker names)",
                      Hint::kConfigValue);
  }
  return v;
}

std::string show_bool(bool b) {
  return b ? "true" : "false";
}

std::string show_seconds(std::chrono::seconds s) {
  return std::to_string(s.count());
}

std::string show_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

std::string show_log_level(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
  }
  return "info";
}

// --- loading ----------------------------------------------------------------

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  return env;
}

Surroundings Surroundings::detect() {
  Surroundings around;
  around.stderr_is_tty = isatty(STDERR_FILENO) == 1;
  std::error_code ec;
  around.in_container = std::filesystem::exists("/.dockerenv", ec) ||
                        std::filesystem::exists("/run/.containerenv", ec);
  return around;
}

std::pair<LogFormat, std::string> default_log_format(const Environment& env,
                                                     const Surroundings& around) {
  auto is_set = [&env](const char* name) {
    auto it = env.find(name);
    return it != env.end() && !trim(it->second).empty();
  };
  for (const char* name : {"RAILWAY_ENVIRONMENT_ID", "RAILWAY_ENVIRONMENT_NAME",
                           "RAILWAY_ENVIRONMENT", "RAILWAY_SERVICE_ID", "RAILWAY_DEPLOYMENT_ID"}) {
    if (is_set(name)) {
      return {LogFormat::kJson, std::string(name) + " is set: Railway reads JSON levels"};
    }
  }
  if (is_set("KUBERNETES_SERVICE_HOST")) {
    return {LogFormat::kJson, "KUBERNETES_SERVICE_HOST is set"};
  }
  if (around.in_container && !around.stderr_is_tty) {
    return {LogFormat::kJson, "in a container without a terminal"};
  }
  return {LogFormat::kText, around.stderr_is_tty ? "a terminal" : ""};
}

LoadedConfig load_config(const Environment& env, const FlagValues& flags,
                         const Surroundings& around) {
  LoadedConfig loaded;
  Config& config = loaded.config;
  std::vector<std::string> explicitly_set;

  for (const auto& setting : settings_table()) {
    ConfigEntry entry;
    entry.variable = std::string(setting.env.front());
    entry.flag = std::string(setting.flag);
    std::optional<std::string> value;
    if (auto it = flags.find(entry.flag); it != flags.end()) {
      value = it->second;
      entry.origin = Origin::kFlag;
      entry.source = entry.flag;
    } else {
      for (auto name : setting.env) {
        if (auto it2 = env.find(std::string(name)); it2 != env.end()) {
          value = it2->second;
          entry.origin = Origin::kEnv;
          entry.source = std::string(name);
          break;
        }
      }
    }
    // An empty environment variable means "unset", as in the Python script;
    // an empty flag value is passed on so that it gets a clear error.
    if (value && (entry.origin == Origin::kFlag || !trim(*value).empty())) {
      setting.apply(config, entry.source, *value);
      explicitly_set.push_back(entry.variable);
    } else {
      entry.origin = Origin::kDefault;
      entry.source.clear();
    }
    loaded.entries.push_back(std::move(entry));
  }

  auto was_set = [&](std::string_view variable) {
    return std::find(explicitly_set.begin(), explicitly_set.end(), variable) !=
           explicitly_set.end();
  };

  // Defaults that depend on other values.
  if (config.api_url.empty()) {
    throw usage_error(
        "PREFECT_API_URL: not set (expected the API base URL, e.g. http://127.0.0.1:4200/api "
        "or https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace>; "
        "flag --api-url)",
        Hint::kConfigValue);
  }
  if (config.worker_name.empty()) {
    config.worker_name = "prefect-cycle-" + host_name();
  }
  if (!was_set("PREFECT_WAIT_FOR_COMPLETION")) {
    config.wait_for_completion = !config.run_forever;
  }
  if (!was_set("PREFECT_AUTO_PAUSE")) {
    config.auto_pause = config.run_forever ? AutoPause::kOff : AutoPause::kOn;
  }
  auto entry_of = [&loaded](std::string_view variable) -> ConfigEntry& {
    for (auto& entry : loaded.entries) {
      if (entry.variable == variable) {
        return entry;
      }
    }
    throw std::logic_error("no setting " + std::string(variable));
  };
  if (config.database_url.empty()) {
    if (auto it = env.find("DATABASE_PUBLIC_URL"); it != env.end() && !trim(it->second).empty()) {
      config.database_url = trim(it->second);
      config.database_url_from_public = true;
      auto& entry = entry_of("DATABASE_URL");
      entry.origin = Origin::kEnv;
      entry.source = "DATABASE_PUBLIC_URL";
    }
  }
  if (!was_set("PREFECT_WORKER_CYCLE_LOG_FORMAT")) {
    auto [format, why] = default_log_format(env, around);
    config.log_format = format;
    entry_of("PREFECT_WORKER_CYCLE_LOG_FORMAT").source = why;
  }
  if (config.tls_insecure_skip_verify) {
    config.warnings.emplace_back(
        "PREFECT_API_TLS_INSECURE_SKIP_VERIFY is on: TLS certificates of the Prefect API are "
        "NOT verified; anyone on the network path can read the API key");
  }
  if (!config.api_key.empty() && !config.api_auth_string.empty()) {
    config.warnings.emplace_back(
        "both PREFECT_API_AUTH_STRING and PREFECT_API_KEY are set: using the auth string "
        "(Basic auth)");
  }

  if (config.pushgateway_grouping.empty()) {
    config.pushgateway_grouping = {{"pool", config.work_pool}};
  }

  // Secrets to redact everywhere from now on.
  config.redactor->add_secret(config.api_key);
  config.redactor->add_secret(config.api_auth_string);
  config.redactor->add_secret(config.github_token);
  if (auto colon = config.api_auth_string.find(':'); colon != std::string::npos) {
    config.redactor->add_secret(config.api_auth_string.substr(colon + 1));
  }
  for (const auto& secret : ping_url_secrets(config.ping_url)) {
    config.redactor->add_secret(secret);
  }
  for (const auto* url : {&config.repository, &config.database_url, &config.pushgateway_url}) {
    if (auto password = password_of(*url)) {
      config.redactor->add_secret(*password);
    }
  }

  // Display values, after the defaults are final.
  const auto& table = settings_table();
  for (std::size_t i = 0; i < table.size(); ++i) {
    auto& entry = loaded.entries[i];
    std::string shown = table[i].show(config);
    if (table[i].secret && !shown.empty()) {
      shown = std::string(kRedacted);
    }
    entry.value = config.redactor->redact(shown);
  }
  return loaded;
}

}  // namespace pc
