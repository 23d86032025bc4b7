#pragma once

namespace pc {

// The whole program: parses the command line, loads the configuration, runs the
// chosen subcommand, and maps every outcome to an exit code (the only place
// that decides it). Never throws.
int app_main(int argc, char** argv);

}  // namespace pc
