#pragma once
// The batch-job gauges of one cycle in Prometheus' text exposition format
// 0.0.4, for the Pushgateway. Names follow Prometheus' conventions: the
// prefix prefect_cycle_, base units in the name (_seconds), Unix timestamps
// as _timestamp_seconds.
//
//   prefect_cycle_last_start_timestamp_seconds
//   prefect_cycle_last_end_timestamp_seconds
//   prefect_cycle_last_success_timestamp_seconds   only when the exit code is 0
//   prefect_cycle_duration_seconds
//   prefect_cycle_phase_duration_seconds{phase}    every phase; 0 = did not run
//   prefect_cycle_preflight_duration_seconds{step} sync, install, checks
//   prefect_cycle_flow_runs{state}                 every state type + UNKNOWN
//   prefect_cycle_exit_code
//   prefect_cycle_pool_paused                      1 paused, 0 may be resumed

#include <string>
#include <string_view>
#include <vector>

#include "cycle/summary.hpp"

namespace pc {

// The phases of a cycle, in order, as the summary names them.
const std::vector<std::string_view>& cycle_phase_names();

// The metrics text of `summary`, one HELP and one TYPE line per family, every
// line ending in '\n'.
std::string render_cycle_metrics(const CycleSummary& summary);

}  // namespace pc
