// doctor's look at the on-demand automation (`prefect-cycle on-demand`).
#include "cli/doctor_checks.hpp"
#include "cli/on_demand_spec.hpp"
#include "prefect/automations.hpp"

namespace pc::doctor_detail {

void Doctor::check_on_demand() {
  const std::string name = on_demand_automation_name(config_.work_pool);
  if (!has_automations_) {
    skip("on-demand", "the server has no automations (Prefect 2): runs wait for the cron tick");
    return;
  }
  try {
    AutomationsClient automations(stack_.api());
    auto automation = automations.find_automation(name);
    if (!automation) {
      skip("on-demand",
           "no automation \"" + name +
               "\": runs wait for the cron tick (`prefect-cycle on-demand` sets one up)");
    } else if (!automation->value("enabled", false)) {
      add("on-demand", true,
          "automation \"" + name +
              "\" exists but is disabled: runs wait for the cron tick (enable it in the UI's "
              "Automations page, or run `prefect-cycle on-demand` again)",
          "", ExitCode::kUsage);
    } else {
      add("on-demand", true,
          "automation \"" + name + "\" exists and is enabled (id " + automation->value("id", "") +
              ")",
          "", ExitCode::kUsage);
    }
  } catch (const Error& e) {
    add("on-demand", false, e.message(), std::string(hint_text(e.hint())), ExitCode::kApi);
  }
}

}  // namespace pc::doctor_detail
