#pragma once
// Internal to the settings table (settings.cpp): the rows of the preflight
// (repository, code sync, installs, database, interpreter, warm start), in
// settings_preflight.cpp, and the parsers both files use.

#include <chrono>
#include <string>
#include <vector>

#include "config/settings.hpp"

namespace pc::settings_detail {

// parse_int() as seconds.
std::chrono::seconds seconds(const std::string& where, const std::string& value, int min, int max);
// Python module names, dotted ("pandas", "sqlalchemy.orm"), for the preload.
std::vector<std::string> module_names(const std::string& where, const std::string& value);

// The table's rows from PREFECT_WORKER_REPOSITORY to PREFECT_CYCLE_PRELOAD_MODULES,
// in the order `config` shows them.
std::vector<Setting> preflight_settings();

}  // namespace pc::settings_detail
