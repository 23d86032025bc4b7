#pragma once
// What a cycle tells monitoring, when PREFECT_CYCLE_PING_URL and/or
// PREFECT_CYCLE_PUSHGATEWAY_URL are set (monitor/ping.hpp,
// monitor/pushgateway.hpp). Monitoring never changes the cycle's exit code and
// never delays the pause; its time is bounded:
//
//   cycle_started()   the start ping, before the preflight: at most
//                     kMonitorRequestBudget (3 s);
//   cycle_finished()  after the pause: the final ping, then the metrics push,
//                     together at most kMonitorEndBudget (4 s), the ping at
//                     most 3 s of it.
//
// So a cycle whose endpoints all hang takes at most 3 s + 4 s longer.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "config/config.hpp"
#include "cycle/summary.hpp"
#include "http/curl_transport.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "monitor/ping.hpp"

namespace pc {

inline constexpr std::chrono::milliseconds kMonitorEndBudget{4000};

class CycleMonitor {
 public:
  // `run_id` pairs the start ping with the final one (healthchecks.io's rid).
  CycleMonitor(const Config& config, const Logger& log, HttpTransport& transport, Sleeper& sleeper,
               const Clock& clock, std::string run_id);

  bool enabled() const { return pinger_.has_value() || !config_.pushgateway_url.empty(); }
  void cycle_started();
  // `summary` is final: exit code, duration, phases, runs, pool state.
  void cycle_finished(const CycleSummary& summary);

 private:
  const Config& config_;
  const Logger& log_;
  HttpTransport& transport_;
  Sleeper& sleeper_;
  const Clock& clock_;
  std::optional<Pinger> pinger_;
};

// The production monitor: libcurl with the system's CA bundle (the API's TLS
// settings are for the API), a sleeper that a stop signal does not cut short
// (the final ping after SIGTERM must still get its retries; the bounds hold
// anyway), the steady clock, a fresh run id.
class MonitorStack {
 public:
  MonitorStack(const Config& config, const Logger& log);
  CycleMonitor& monitor() { return monitor_; }

 private:
  CurlTransport transport_;
  InterruptibleSleeper sleeper_;
  SteadyClock clock_;
  CycleMonitor monitor_;
};

}  // namespace pc
