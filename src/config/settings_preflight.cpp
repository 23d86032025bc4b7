#include "config/settings_rows.hpp"

#include <cctype>

#include "common/error.hpp"
#include "common/text.hpp"

namespace pc::settings_detail {

std::vector<std::string> module_names(const std::string& where, const std::string& value) {
  std::vector<std::string> names = split_list(value);
  for (const auto& name : names) {
    bool ok = true;
    bool start = true;
    for (char ch : name) {
      const bool letter = std::isalpha(static_cast<unsigned char>(ch)) != 0 || ch == '_';
      const bool digit = std::isdigit(static_cast<unsigned char>(ch)) != 0;
      ok = ok && (ch == '.' ? !start : (letter || (digit && !start)));
      start = ch == '.';
    }
    if (!ok || start) {
      throw usage_error(where + ": invalid module name \"" + name + "\" in \"" + value +
                            "\" (expected a comma list of Python module names, e.g. "
                            "\"pandas,sqlalchemy.orm\")",
                        Hint::kConfigValue);
    }
  }
  return names;
}

std::vector<Setting> preflight_settings() {
  using C = Config;
  using S = std::string;
  return {
      {{"PREFECT_WORKER_REPOSITORY"},
       "--repository",
       "git URL to preflight (unset = skip)",
       false,
       false,
       [](C& c, const S&, const S& v) { c.repository = v; },
       [](const C& c) { return c.repository; }},
      {{"PREFECT_WORKER_BRANCH"},
       "--branch",
       "branch that must exist",
       false,
       false,
       [](C& c, const S& w, const S& v) { c.branch = require_non_empty(w, v, "a branch name"); },
       [](const C& c) { return c.branch; }},
      {{"PREFECT_WORKER_VERIFY_REPOSITORY"},
       "--verify-repository",
       "run the repository preflight",
       false,
       true,
       [](C& c, const S& w, const S& v) { c.verify_repository = parse_bool(w, v); },
       [](const C& c) { return show_bool(c.verify_repository); }},
      {{"GITHUB_ACCESS_TOKEN"},
       "--github-token",
       "token for HTTPS git (never logged)",
       true,
       false,
       [](C& c, const S&, const S& v) { c.github_token = v; },
       [](const C& c) { return c.github_token; }},
      {{"PREFECT_WORKER_CODE_DIR", "TRUECIVIC_CODE_DIR"},
       "--code-dir",
       "sync the repository into this directory (unset = no sync)",
       false,
       false,
       [](C& c, const S& w, const S& v) { c.code_dir = require_non_empty(w, v, "a path"); },
       [](const C& c) { return c.code_dir.string(); }},
      {{"PREFECT_WORKER_INSTALL_REQUIREMENTS", "TRUECIVIC_INSTALL_REQUIREMENTS"},
       "--install-requirements",
       "pip install -r the requirements file after sync",
       false,
       true,
       [](C& c, const S& w, const S& v) { c.install_requirements = parse_bool(w, v); },
       [](const C& c) { return show_bool(c.install_requirements); }},
      {{"PREFECT_WORKER_REQUIREMENTS_FILE", "TRUECIVIC_REQUIREMENTS_FILE"},
       "--requirements-file",
       "requirements file, relative to the code directory",
       false,
       false,
       [](C& c, const S& w, const S& v) {
         c.requirements_file = require_non_empty(w, v, "a path");
       },
       [](const C& c) { return c.requirements_file; }},
      {{"PREFECT_WORKER_INSTALL_EDITABLE", "TRUECIVIC_INSTALL_EDITABLE"},
       "--install-editable",
       "pip install -e . after sync",
       false,
       true,
       [](C& c, const S& w, const S& v) { c.install_editable = parse_bool(w, v); },
       [](const C& c) { return show_bool(c.install_editable); }},
      {{"PREFECT_CYCLE_INSTALLER"},
       "--installer",
       "auto (uv when it is found, else pip), uv or pip",
       false,
       false,
       [](C& c, const S& w, const S& v) {
         const std::string name = ascii_lower(trim(v));
         if (name == "auto") {
           c.installer = InstallerChoice::kAuto;
         } else if (name == "uv") {
           c.installer = InstallerChoice::kUv;
         } else if (name == "pip") {
           c.installer = InstallerChoice::kPip;
         } else {
           throw usage_error(w + ": invalid installer \"" + v + "\" (expected auto, uv or pip)",
                             Hint::kConfigValue);
         }
       },
       [](const C& c) {
         return std::string(c.installer == InstallerChoice::kUv    ? "uv"
                            : c.installer == InstallerChoice::kPip ? "pip"
                                                                   : "auto");
       }},
      {{"PREFECT_CYCLE_CACHE_DIR"},
       "--cache-dir",
       "installer cache and git mirror kept across containers (unset = "
       "$RAILWAY_VOLUME_MOUNT_PATH/prefect-cycle-cache when set, else none)",
       false,
       false,
       [](C& c, const S&, const S& v) { c.cache_dir = v; },
       [](const C& c) { return c.cache_dir.string(); }},
      {{"PREFECT_WORKER_GIT_TIMEOUT_SECONDS"},
       "--git-timeout",
       "seconds allowed for each git operation",
       false,
       false,
       [](C& c, const S& w, const S& v) { c.git_timeout = seconds(w, v, 1, 3600); },
       [](const C& c) { return show_seconds(c.git_timeout); }},
      {{"DATABASE_URL"},
       "--database-url",
       "database for the flows (DATABASE_PUBLIC_URL fills it in when unset)",
       false,
       false,
       [](C& c, const S&, const S& v) { c.database_url = v; },
       [](const C& c) { return c.database_url; }},
      {{"PREFECT_WORKER_CHECK_DATABASE"},
       "--check-database",
       "check that DATABASE_URL accepts a connection",
       false,
       true,
       [](C& c, const S& w, const S& v) { c.check_database = parse_bool(w, v); },
       [](const C& c) { return show_bool(c.check_database); }},
      {{"PREFECT_WORKER_PYTHON"},
       "--python",
       "Python for flow runs (-m prefect.engine), pip and doctor",
       false,
       false,
       [](C& c, const S& w, const S& v) { c.python = require_non_empty(w, v, "a path"); },
       [](const C& c) { return c.python; }},
      {{"PREFECT_CYCLE_WARM_START"},
       "--warm-start",
       "fork flow runs from one Python that imported Prefect's engine (see README)",
       false,
       true,
       [](C& c, const S& w, const S& v) { c.warm_start = parse_bool(w, v); },
       [](const C& c) { return show_bool(c.warm_start); }},
      {{"PREFECT_CYCLE_PRELOAD_MODULES"},
       "--preload",
       "with warm start: modules to import before forking, e.g. pandas,sqlalchemy",
       false,
       false,
       [](C& c, const S& w, const S& v) { c.preload_modules = module_names(w, v); },
       [](const C& c) { return show_list(c.preload_modules); }},
  };
}

}  // namespace pc::settings_detail
