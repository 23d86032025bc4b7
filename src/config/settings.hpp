#pragma once
// The table of configuration settings: each row maps environment variables (the
// first is canonical, the rest aliases) and one flag to a member of Config.
// load_config() walks it; `prefect-cycle config` prints it; the CLI registers
// its flags from it. Adding a setting = adding one row.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace pc {

struct Setting {
  std::vector<std::string_view> env;  // canonical name first, then aliases
  std::string_view flag;              // "--pool"
  std::string_view help;
  bool secret = false;
  bool is_switch = false;  // boolean: the bare flag means true
  // Parses `value` into the config; `where` is the variable or flag name to
  // put in error messages.
  std::function<void(Config&, const std::string& where, const std::string& value)> apply;
  // The effective value for display (before redaction).
  std::function<std::string(const Config&)> show;
};

const std::vector<Setting>& settings_table();

// Parsers, exposed for tests. Each throws pc::Error(kUsage) with a message
// "<where>: <problem> \"<value>\" (expected ...)".
bool parse_bool(const std::string& where, const std::string& value);
int parse_int(const std::string& where, const std::string& value, int min, int max);
std::vector<StateType> parse_state_types(const std::string& where, const std::string& value);
std::vector<DeploymentRef> parse_deployments(const std::string& where, const std::string& value);
std::string parse_api_url(const std::string& where, const std::string& value,
                          std::vector<std::string>& warnings);
LogLevel parse_log_level(const std::string& where, const std::string& value);
LogFormat parse_log_format(const std::string& where, const std::string& value);
AutoPause parse_auto_pause(const std::string& where, const std::string& value);
std::string require_non_empty(const std::string& where, const std::string& value,
                              const std::string& what);
std::string worker_name_value(const std::string& where, const std::string& value);

// Splits a comma list, trimming items and dropping empty ones.
std::vector<std::string> split_list(std::string_view value);

std::string show_bool(bool b);
std::string show_seconds(std::chrono::seconds s);
std::string show_list(const std::vector<std::string>& items);
std::string show_log_level(LogLevel level);

}  // namespace pc
