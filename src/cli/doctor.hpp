#pragma once
// `prefect-cycle doctor`: every check of a setup, one line each, ✓ or ✗ with the
// fix in words. Changes nothing on the server.

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <vector>

#include "common/exit_code.hpp"
#include "config/config.hpp"

namespace pc {

struct DoctorCheck {
  std::string name;  // "api.health"
  bool ok = false;
  bool skipped = false;  // not applicable (e.g. no repository configured)
  std::string detail;    // what was found
  std::string fix;       // what to do, when not ok
  ExitCode failure_class = ExitCode::kApi;
};

struct DoctorReport {
  std::vector<DoctorCheck> checks;
  // 0 when every check passed, else the class of the first failing check.
  ExitCode exit_code() const;
  void print_text(std::ostream& out) const;
  void print_json(std::ostream& out) const;
};

// Runs every check. `config_error` is set when the configuration did not
// load; the checks that need it are then reported as not run.
DoctorReport run_doctor(const Config& config);

// The report for a configuration that failed to load: the error's message and
// its hint text as the fix.
DoctorReport doctor_config_failure(const std::string& message, std::string_view fix);

}  // namespace pc
