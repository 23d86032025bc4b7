#include "monitor/monitor.hpp"

#include "monitor/pushgateway.hpp"
#include "prefect/client.hpp"

namespace pc {
namespace {

// Monitoring answers are a word ("OK") or an error page.
constexpr std::size_t kMonitorMaxAnswerBytes = std::size_t{64} * 1024;

}  // namespace

CycleMonitor::CycleMonitor(const Config& config, const Logger& log, HttpTransport& transport,
                           Sleeper& sleeper, const Clock& clock, std::string run_id)
    : config_(config), log_(log), transport_(transport), sleeper_(sleeper), clock_(clock) {
  if (!config_.ping_url.empty()) {
    pinger_.emplace(config_.ping_url, std::move(run_id), transport_, sleeper_, clock_, log_);
  }
}

void CycleMonitor::cycle_started() {
  if (pinger_) {
    pinger_->start();
  }
}

void CycleMonitor::cycle_finished(const CycleSummary& summary) {
  const auto deadline = clock_.now() + kMonitorEndBudget;
  if (pinger_) {
    std::string json =
        summary.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    pinger_->finish(summary.exit_code, ping_body(summary.one_line(), json, log_.redactor()),
                    deadline);
  }
  if (!config_.pushgateway_url.empty()) {
    push_cycle_metrics(transport_, sleeper_, clock_, log_, config_.pushgateway_url,
                       config_.pushgateway_job, config_.pushgateway_grouping, summary, deadline);
  }
}

MonitorStack::MonitorStack(const Config& config, const Logger& log)
    : transport_(TlsOptions{}, kMonitorAttemptTimeout, kMonitorMaxAnswerBytes),
      sleeper_(nullptr),
      monitor_(config, log, transport_, sleeper_, clock_, new_uuid4()) {}

}  // namespace pc
