#include "cli/app.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <set>

#include "cli/commands.hpp"
#include "cli/on_demand.hpp"
#include "common/error.hpp"
#include "common/spellcheck.hpp"
#include "common/text.hpp"
#include "config/settings.hpp"

namespace pc {
namespace {

void print_error(const std::string& message) {
  // Config errors quote values; redact any URL password they might contain.
  std::fprintf(stderr, "prefect-cycle: error: %s\n", redact_url_userinfo(message).c_str());
}

// Short flags as Prefect's `prefect worker start` spells them.
const std::map<std::string_view, std::string_view> kShortFlags{
    {"--pool", "-p"}, {"--worker-name", "-n"}, {"--queues", "-q"}, {"--limit", "-l"}};

// Other names a flag answers to: Prefect's CLI says "work pool" everywhere.
const std::map<std::string_view, std::string_view> kFlagAliases{{"--pool", "--work-pool"}};

// Prefect's `prefect worker start` flags that are ours under another name,
// suggested when typed (not aliases: --work-queue is one queue, repeated).
const std::map<std::string, std::string> kPrefectFlags{
    {"--work-queue", "--queues"}, {"--name", "--worker-name"}, {"--type", "--worker-type"}};

// Every flag the command line accepts, the subcommands' included, with dashes.
std::vector<std::string> known_flags(const CLI::App& app) {
  std::vector<std::string> flags;
  auto add = [&flags](const CLI::App& from) {
    for (const CLI::Option* option : from.get_options()) {
      for (const auto& name : option->get_lnames()) {
        flags.push_back("--" + name);
      }
      for (const auto& name : option->get_snames()) {
        flags.push_back("-" + name);
      }
    }
  };
  add(app);
  for (const CLI::App* sub : app.get_subcommands({})) {
    add(*sub);
  }
  return flags;
}

bool is_bool_literal(const std::string& text) {
  const std::string value = ascii_lower(text);
  for (const char* word : {"true", "false", "1", "0", "yes", "no", "on", "off"}) {
    if (value == word) {
      return true;
    }
  }
  return false;
}

// `--drain false` means `--drain=false`: a boolean flag followed by a boolean
// word takes it as its value (CLI11 would read the word as a stray argument).
std::vector<std::string> join_boolean_values(int argc, char** argv,
                                             const std::set<std::string>& switches) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> joined;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (switches.count(args[i]) > 0 && i + 1 < args.size() && is_bool_literal(args[i + 1])) {
      joined.push_back(args[i] + "=" + args[i + 1]);
      ++i;
    } else {
      joined.push_back(args[i]);
    }
  }
  return joined;
}

// The value type shown in --help: booleans and whole numbers by their default.
std::string type_of(const Setting& setting, const std::string& default_value) {
  if (setting.is_switch) {
    return "BOOL";
  }
  if (!default_value.empty() && std::all_of(default_value.begin(), default_value.end(),
                                            [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return "INT";
  }
  return "TEXT";
}

}  // namespace

std::optional<Error> unknown_flag_error(const std::vector<std::string>& args,
                                        const std::vector<std::string>& known) {
  for (const auto& arg : args) {
    if (arg == "--") {
      break;
    }
    if (arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      continue;
    }
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(known.begin(), known.end(), name) != known.end()) {
      continue;
    }
    std::vector<std::string> long_flags;
    std::copy_if(known.begin(), known.end(), std::back_inserter(long_flags),
                 [](const std::string& flag) { return flag.compare(0, 2, "--") == 0; });
    std::optional<std::string> guess;
    if (auto it = kPrefectFlags.find(name); it != kPrefectFlags.end()) {
      guess = it->second;
    } else {
      guess = closest_flag(name, long_flags);
    }
    std::string message = "unknown flag " + name;
    if (guess) {
      message += ": did you mean " + *guess + "?";
    }
    return usage_error(message, Hint::kUsageFlag);
  }
  return std::nullopt;
}

int app_main(int argc, char** argv) {
  CLI::App app{
      "prefect-cycle: resume a Prefect work pool, run its due flow runs, wait, pause it again.\n"
      "Every flag has an environment variable (see `prefect-cycle config`); a flag beats it.",
      "prefect-cycle"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version,-V", std::string("prefect-cycle ") + PREFECT_CYCLE_VERSION);

  FlagValues flags;
  std::deque<std::string> raw_values;  // stable addresses for CLI11 to write into
  struct Registered {
    CLI::Option* option;
    std::string flag;
    const std::string* value;
  };
  std::vector<Registered> registered;
  std::vector<Registered> negations;
  std::vector<Registered> aliases;
  std::set<std::string> switches;
  const Config defaults;
  for (const auto& setting : settings_table()) {
    std::string flag(setting.flag);
    std::string help = std::string(setting.help) + " [" + std::string(setting.env.front()) + "]";
    const std::string default_value = setting.secret ? "" : setting.show(defaults);
    auto& target = raw_values.emplace_back();
    std::string names = flag;
    if (auto it = kShortFlags.find(setting.flag); it != kShortFlags.end()) {
      names = std::string(it->second) + "," + flag;
    }
    const auto alias = kFlagAliases.find(setting.flag);
    if (alias != kFlagAliases.end()) {
      help += " (also " + std::string(alias->second) + ")";
    }
    CLI::Option* option = nullptr;
    if (setting.is_switch) {
      // --drain, --drain=false, --drain false; --no-drain (not listed in
      // --help, named in the flag's help instead).
      const std::string negated = "--no-" + flag.substr(2);
      switches.insert(flag);
      option = app.add_flag(names, target, help + " (" + negated + " turns it off)");
      app.add_flag_callback(negated, [&target] { target = "false"; })->group("");
      negations.push_back({app.get_option(negated), flag, &target});
    } else {
      option = app.add_option(names, target, help);
    }
    option->type_name(type_of(setting, default_value));
    if (!default_value.empty()) {
      option->default_str(default_value);
    }
    registered.push_back({option, flag, &target});
    if (alias != kFlagAliases.end()) {
      // The other spelling of a flag that takes a value: not listed in --help,
      // named in the flag's help instead.
      CLI::Option* other = app.add_option(std::string(alias->second), target)->group("");
      aliases.push_back({other, flag, &target});
    }
  }
  app.get_formatter()->column_width(40);

  bool dry_run = false;
  bool doctor_json = false;
  auto* run = app.add_subcommand("run", "run one cycle (the default)");
  run->add_flag("--dry-run", dry_run, "print the plan without changing anything");
  auto* doctor_cmd = app.add_subcommand("doctor", "check the setup; changes nothing");
  doctor_cmd->add_flag("--json", doctor_json, "print the checks as JSON");
  auto* config_cmd = app.add_subcommand("config", "print the effective configuration");
  auto* version_cmd = app.add_subcommand("version", "print the version");
  OnDemandFlags on_demand;
  auto* on_demand_cmd = add_on_demand_subcommand(app, on_demand);
  for (auto* sub : {run, doctor_cmd, config_cmd, version_cmd, on_demand_cmd}) {
    sub->fallthrough();
  }

  try {
    std::vector<std::string> args = join_boolean_values(argc, argv, switches);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last to first
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 says "The following arguments were not expected: 3 --limt": name
    // the flag and the one meant instead, as every other error names its fix.
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (auto unknown = unknown_flag_error(args, known_flags(app))) {
      print_error(unknown->what());
    } else {
      print_error(std::string(e.what()) + " (see prefect-cycle --help)");
    }
    return to_int(ExitCode::kUsage);
  }

  if (version_cmd->parsed()) {
    std::printf("prefect-cycle %s\n", PREFECT_CYCLE_VERSION);
    return 0;
  }

  for (const auto& list : {&registered, &negations, &aliases}) {
    for (const auto& r : *list) {
      if (r.option->count() > 0) {
        flags[r.flag] = *r.value;
      }
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
    if (on_demand_cmd->parsed()) {
      return to_int(on_demand_command(loaded.config, on_demand, std::cout));
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
