#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pc {

// The whole program: parses the command line, loads the configuration, runs the
// chosen subcommand, and maps every outcome to an exit code (the only place
// that decides it). Never throws.
int app_main(int argc, char** argv);

// The first argument of `args` (argv without the program name, before any
// "--") that is a long flag ("--x" or "--x=value") naming none of `known`, as a
// usage Error (Hint::kUsageFlag) that names it and the closest known flag;
// nullopt when every long flag is known.
std::optional<Error> unknown_flag_error(const std::vector<std::string>& args,
                                        const std::vector<std::string>& known);

}  // namespace pc
