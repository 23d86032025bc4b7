#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "worker/native/loop.hpp"

// The native worker's cancellations (loop.hpp): runs of ours cancelled in
// Prefect get SIGTERM, the grace period, SIGKILL; their reports say
// CANCELLED (final_state.hpp).

namespace pc {

void NativeWorker::Impl::stop_process(Running& r) {
  processes_->terminate(r.process, config_.grace);
}

void NativeWorker::Impl::check_cancellations() {
  next_cancel_check_ = clock_.now() + std::min(config_.query_interval, std::chrono::seconds(10));
  FlowRunFilter filter;
  for (const auto& [id, r] : running_) {
    if (!r.cancelling) {
      filter.ids.push_back(id);
    }
  }
  if (filter.ids.empty()) {
    return;
  }
  filter.state_types = {StateType::kCancelling, StateType::kCancelled};
  cancel_check_in_flight_ = true;
  client_.start_call(PrefectClient::flow_runs_read(filter),
                     [this](const Outcome<std::vector<FlowRun>>& cancelled) {
                       cancellations_answered(cancelled);
                     });
}

void NativeWorker::Impl::cancellations_answered(const Outcome<std::vector<FlowRun>>& cancelled) {
  cancel_check_in_flight_ = false;
  if (const auto e = error_of(cancelled.error)) {
    log_.warn(std::string("cancellation check failed: ") + e->what());
    return;
  }
  for (const auto& run : *cancelled.value) {
    auto it = running_.find(run.id);
    if (it == running_.end() || it->second.cancelling) {
      continue;  // ended meanwhile, or already being stopped
    }
    it->second.cancelling = true;
    it->second.log.info("cancellation requested in Prefect: SIGTERM, then SIGKILL after " +
                        std::to_string(config_.grace.count()) + " s");
    stop_process(it->second);
  }
}

}  // namespace pc
