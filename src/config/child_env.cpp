#include "config/child_env.hpp"

namespace pc {

Environment child_environment(const Config& config, const Environment& base,
                              const std::map<std::string, std::string>& extra) {
  Environment env = base;
  env["PREFECT_API_URL"] = config.api_url;
  auto set_or_clear = [&env](const std::string& name, const std::string& value) {
    if (value.empty()) {
      env.erase(name);
    } else {
      env[name] = value;
    }
  };
  set_or_clear("PREFECT_API_KEY", config.api_key);
  set_or_clear("PREFECT_API_AUTH_STRING", config.api_auth_string);
  set_or_clear("PREFECT_API_SSL_CERT_FILE", config.ssl_cert_file.string());
  if (config.tls_insecure_skip_verify) {
    env["PREFECT_API_TLS_INSECURE_SKIP_VERIFY"] = "true";
  }
  if (!config.database_url.empty()) {
    env["DATABASE_URL"] = config.database_url;
  }
  for (const auto& [key, value] : extra) {
    // The code directory goes first on an existing PYTHONPATH, not instead of it.
    if (key == "PYTHONPATH" && env.count(key) != 0 && !env[key].empty()) {
      env[key] = value + ":" + env[key];
    } else {
      env[key] = value;
    }
  }
  return env;
}

}  // namespace pc
