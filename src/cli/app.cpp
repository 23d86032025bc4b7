#include "cli/app.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <deque>
#include <iostream>

#include "cli/commands.hpp"
#include "common/error.hpp"
#include "config/settings.hpp"

namespace pc {
namespace {

void print_error(const std::string& message) {
  // Config errors quote values; redact any URL password they might contain.
  std::fprintf(stderr, "prefect-cycle: error: %s\n", redact_url_userinfo(message).c_str());
}

}  // namespace

int app_main(int argc, char** argv) {
  CLI::App app{
      "prefect-cycle: resume a Prefect work pool, run its due flow runs, wait, pause it again.\n"
      "Every flag has an environment variable (see `prefect-cycle config`); a flag beats it.",
      "prefect-cycle"};
  app.require_subcommand(0, 1);

  FlagValues flags;
  std::deque<std::string> raw_values;  // stable addresses for CLI11 to write into
  struct Registered {
    CLI::Option* option;
    std::string flag;
    const std::string* value;
  };
  std::vector<Registered> registered;
  for (const auto& setting : settings_table()) {
    std::string flag(setting.flag);
    std::string help = std::string(setting.help) + " [" + std::string(setting.env.front()) + "]";
    auto& target = raw_values.emplace_back();
    CLI::Option* option = setting.is_switch ? app.add_flag(flag + "{true}", target, help)
                                            : app.add_option(flag, target, help);
    registered.push_back({option, flag, &target});
  }

  bool dry_run = false;
  bool doctor_json = false;
  auto* run = app.add_subcommand("run", "run one cycle (the default)");
  run->add_flag("--dry-run", dry_run, "print the plan without changing anything");
  auto* doctor_cmd = app.add_subcommand("doctor", "check the setup; changes nothing");
  doctor_cmd->add_flag("--json", doctor_json, "print the checks as JSON");
  auto* config_cmd = app.add_subcommand("config", "print the effective configuration");
  auto* version_cmd = app.add_subcommand("version", "print the version");
  for (auto* sub : {run, doctor_cmd, config_cmd, version_cmd}) {
    sub->fallthrough();
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(std::string(e.what()) + " (see prefect-cycle --help)");
    return to_int(ExitCode::kUsage);
  }

  if (version_cmd->parsed()) {
    std::printf("prefect-cycle %s\n", PREFECT_CYCLE_VERSION);
    return 0;
  }

  for (const auto& r : registered) {
    if (r.option->count() > 0) {
      flags[r.flag] = *r.value;
    }
  }

  if (doctor_cmd->parsed()) {
    return to_int(doctor_command(flags, doctor_json, std::cout));
  }

  try {
    LoadedConfig loaded = load_config(process_environment(), flags);
    loaded.config.dry_run = dry_run;
    if (config_cmd->parsed()) {
      print_config(loaded, std::cout);
      return 0;
    }
    return to_int(run_command(loaded.config));
  } catch (const Error& e) {
    print_error(e.what());
    return to_int(e.code());
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what());
    return to_int(ExitCode::kRunsFailed);
  }
}

}  // namespace pc
