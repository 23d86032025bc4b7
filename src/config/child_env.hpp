#pragma once
// The environment of the processes prefect-cycle starts (Prefect's worker CLI,
// flow runs, pip): our own environment, then the Prefect API settings of the
// effective configuration (a flag may have overridden a variable, so they are
// written out explicitly), then `extra` (e.g. PYTHONPATH and DATABASE_URL
// from the preflight). Later entries win.

#include <map>
#include <string>

#include "config/config.hpp"

namespace pc {

Environment child_environment(const Config& config, const Environment& base,
                              const std::map<std::string, std::string>& extra);

}  // namespace pc
