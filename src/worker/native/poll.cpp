#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "worker/native/loop.hpp"

// The native worker's polls (loop.hpp): the pool's due runs, queued once
// each, and whether a run-once or drain worker is done.

namespace pc {

bool NativeWorker::Impl::wants_poll(TimePoint now) const {
  const bool slots_free =
      static_cast<int>(running_.size() + claims_.in_flight()) < config_.flow_limit;
  if (!slots_free || !queue_.empty() || poll_in_flight_) {
    return false;
  }
  if (config_.run_forever || config_.drain) {
    return now >= next_poll_;
  }
  // Run once: keep taking what was due at the start until a poll has
  // nothing new (a poll returns at most 200 runs).
  return !exhausted_ && now >= next_poll_;
}

PrefectClient::Call<std::vector<WorkerFlowRun>> NativeWorker::Impl::poll_call() {
  if (config_.run_forever || config_.drain) {
    horizon_ = std::chrono::system_clock::now() + config_.prefetch;
  }
  return PrefectClient::scheduled_runs_read(pool_.name, config_.work_queues, horizon_);
}

void NativeWorker::Impl::poll() {
  poll_in_flight_ = true;
  client_.start_call(poll_call(), [this](Outcome<std::vector<WorkerFlowRun>> answered) {
    poll_in_flight_ = false;
    polled(std::move(answered));
  });
}

void NativeWorker::Impl::polled(Outcome<std::vector<WorkerFlowRun>> answered) {
  next_poll_ = clock_.now() + (config_.run_forever || config_.drain
                                   ? std::chrono::milliseconds(config_.query_interval)
                                   : std::chrono::milliseconds(500));
  std::vector<WorkerFlowRun> runs;
  try {
    runs = std::move(answered.get());
    poll_failures_.succeeded();
  } catch (const Error& e) {
    if (!config_.run_forever) {
      throw;
    }
    const int in_a_row = poll_failures_.failed();
    if (in_a_row >= config_.max_consecutive_failures) {
      throw Error(
          ExitCode::kApi,
          "crash loop: " + std::to_string(in_a_row) +
              " API failures in a row (PREFECT_WORKER_MAX_CONSECUTIVE_FAILURES); the last: " +
              e.message(),
          Hint::kWorkerCrashLoop);
    }
    const auto backoff = poll_failures_.delay();
    log_.warn(std::string("polling failed (") + std::to_string(in_a_row) +
              " in a row), next try in " + std::to_string(backoff.count()) + " ms: " + e.what());
    next_poll_ = clock_.now() + backoff;
    return;
  }
  int fresh = 0;
  for (auto& item : runs) {
    if (seen_.insert(item.flow_run.id).second) {
      queue_.push_back(std::move(item.flow_run));
      ++fresh;
    }
  }
  if (fresh == 0) {
    // On PostgreSQL a poll skips the rows a neighbour's poll holds locked
    // (FOR UPDATE SKIP LOCKED), so one empty answer before we launched
    // anything may hide due runs: the cycle only starts a worker when runs
    // are due or active. A second poll, 500 ms later, decides.
    exhausted_ = started_ > 0 || ++empty_polls_ >= 2;
  }
  log_.debug("polled pool \"" + pool_.name + "\": " + std::to_string(runs.size()) +
             " scheduled run(s), " + std::to_string(fresh) + " new");
}

bool NativeWorker::Impl::finished() const {
  if (config_.run_forever || !settled() || !queue_.empty() || poll_in_flight_) {
    return false;
  }
  if (config_.drain) {
    return exhausted_;  // a poll after the last run ended found nothing new
  }
  return exhausted_;
}

bool NativeWorker::Impl::last_lap() const {
  return !config_.run_forever && !config_.drain && exhausted_ && queue_.empty() &&
         !poll_in_flight_ && claims_.settled() && running_.empty();
}

}  // namespace pc
