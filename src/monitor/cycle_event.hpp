#pragma once
// The cycle as one Prefect event, for Prefect's automations
// (PREFECT_CYCLE_EMIT_EVENTS): `prefect-cycle.cycle.completed` (exit code
// 0) or `prefect-cycle.cycle.failed`, about the work pool
// (prefect.work-pool.<id>), with the summary's figures as its payload. A
// quiet tick (the pool never resumed, exit 0) sends nothing: an idle pool
// still costs no write. run_command sends it after run_cycle returned, so it
// never delays the pause.
//
// Its time is bounded by kCycleEventBudget. It needs the pool's id (read
// by the preflight) and the server's release (read by the worker; Prefect
// Cloud has events): what the cycle has not learned is read in one round
// first. A server before Prefect 3.0 has no events: nothing is sent, one
// debug line. Then POST /events. The read and the POST take at most half
// of the budget each. A failure is a warning line; it never changes the
// exit code.

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "cycle/summary.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

inline constexpr std::chrono::milliseconds kCycleEventBudget{4000};

// Whether a cycle with this summary sends its event: it resumed the pool
// or it failed.
bool wants_cycle_event(const CycleSummary& summary);

// The event (events.hpp's shape). Its resource is the pool, with the
// labels an automation can match on: prefect-cycle.outcome (the exit
// code's name), prefect-cycle.pool-paused ("true", "false", or "unknown"
// when the pause was not attempted). Payload: exit_code, outcome, message,
// runs_by_state, pool_resumed, pool_paused_at_end, pool_left_resumed_for,
// duration_seconds, phase_seconds (each phase's), worker.
nlohmann::json cycle_event(const CycleSummary& summary, const std::string& pool_id);

// Sends it when wants_cycle_event() and config.emit_events; never throws.
void send_cycle_event(const Config& config, PrefectClient& client, const CycleSummary& summary,
                      const Logger& log);

}  // namespace pc
