#pragma once
// `prefect-cycle run --dry-run`: reads the pool, the trigger deployments and the
// due flow runs, and prints what a cycle would do. Only GET and filter requests:
// nothing changes on the server (get_scheduled_flow_runs is not used because
// the server marks polled queues READY).

#include <ostream>

#include "common/exit_code.hpp"
#include "config/config.hpp"
#include "prefect/client.hpp"

namespace pc {

// Throws pc::Error like the cycle's preflight would (missing pool: exit 2).
ExitCode print_plan(const Config& config, PrefectClient& client, std::ostream& out);

}  // namespace pc
