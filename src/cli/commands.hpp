#pragma once
// The subcommands behind app_main().

#include <ostream>

#include "common/exit_code.hpp"
#include "config/config.hpp"

namespace pc {

// `prefect-cycle config`: every setting with its value (secrets as ***) and
// where it came from.
void print_config(const LoadedConfig& loaded, std::ostream& out);

// `prefect-cycle doctor [--json]`: loads the configuration itself so that a
// bad one is reported as a failed check.
ExitCode doctor_command(const FlagValues& flags, bool json, std::ostream& out);

// `prefect-cycle run`: one cycle against the real API. Throws pc::Error only
// for failures before the cycle starts.
ExitCode run_command(const Config& config);

}  // namespace pc
