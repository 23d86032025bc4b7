// The end of a cycle: waiting for the pool's runs, pausing the pool (the
// request that must not be lost) and reading the runs' final states.
#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "common/error.hpp"
#include "cycle/cycle_run.hpp"
#include "http/retry.hpp"

namespace pc::cycle_detail {
namespace {

// One try of the pause, the client's retries included.
constexpr std::chrono::milliseconds kPauseTry{120000};
// After a stop signal, all the tries of the pause: they keep their spacing
// (1 s, then 2 s; the client's 1 s, 2 s, 4 s ...) for this long. A platform
// gives a stopped container a draining time (Railway's drainingSeconds, 40
// in railway.toml; Kubernetes' terminationGracePeriodSeconds, 30 by
// default) that has to cover the flows' grace (PREFECT_CYCLE_GRACE_SECONDS,
// 20), their reports and this.
constexpr std::chrono::milliseconds kPauseAfterStop{15000};
// After a second signal the user wants out: one short try.
constexpr std::chrono::milliseconds kHurriedTry{5000};

}  // namespace

// Told by the worker in its last lap (WorkerHooks::last_lap): no run of
// ours will start or run any more, and the last final states are being
// read. The wait's first count, with the pool's workers pause() needs, goes
// now, in flight with those reads: one round trip fewer at the end of a
// cycle. A run whose process ended without a final state is still counted
// active here (the worker sets one after its read): wait() then counts again
// at once.
void CycleRun::start_first_count() {
  if (quiet_ || !config_.wait_for_completion || first_count_) {
    return;
  }
  auto first = std::make_shared<FirstCount>();
  first_count_ = first;
  try {
    deps_.client.start_call(
        PrefectClient::count_read(active_runs_filter()),
        [first](Outcome<std::int64_t> answered) { first->active = std::move(answered); });
    if (config_.auto_pause == AutoPause::kOn && resume_attempted_) {
      deps_.client.start_call(
          PrefectClient::workers_read(config_.work_pool),
          [first](Outcome<std::vector<Worker>> answered) { first->workers = std::move(answered); });
    }
  } catch (const Error& e) {
    log_.debug(std::string("could not start the first count of the active flow runs: ") + e.what());
  }
}

// The count start_first_count() started, if it was answered; the pool's
// workers read with it go to early_workers_. None: wait() counts itself.
std::optional<std::int64_t> CycleRun::take_first_count() {
  const auto first = std::exchange(first_count_, nullptr);
  if (!first || !first->active || !first->active->value) {
    return std::nullopt;  // not started, not answered yet, or failed
  }
  if (first->workers && first->workers->value) {
    early_workers_ = std::move(*first->workers->value);
  }
  return *first->active->value;
}

void CycleRun::wait() {
  if (quiet_) {
    skip(kQuiet);
    return;
  }
  if (!config_.wait_for_completion) {
    skip("PREFECT_WAIT_FOR_COMPLETION is off");
    return;
  }
  const auto start = deps_.clock.now();
  const bool bounded = wait_deadline_.has_value();
  const auto deadline = wait_deadline_.value_or(start);
  const FlowRunFilter filter = active_runs_filter();
  // The first count goes with the read of the pool's workers that pause()
  // needs next: one round trip fewer when nothing is active any more. Our
  // worker row stays until the pool is paused (pause()). The worker's last
  // lap has usually started both (start_first_count).
  std::optional<std::int64_t> first = take_first_count();
  bool with_workers = config_.auto_pause == AutoPause::kOn && resume_attempted_;
  auto count = [&] {
    if (!std::exchange(with_workers, false)) {
      return deps_.client.count_flow_runs(filter);
    }
    auto [active, workers] = deps_.client.read_together(
        PrefectClient::count_read(filter), PrefectClient::workers_read(config_.work_pool));
    early_workers_ = std::move(workers.value);  // none: pause() reads them
    return active.get();
  };
  // One bad answer (a 500, a malformed body) does not end the wait: the count
  // is asked again 1 s later, up to three failures in a row.
  FailureStreak count_failures{std::chrono::seconds(1), std::chrono::seconds(1)};
  while (true) {
    check_stop();
    std::int64_t active = 0;
    const bool counted_early = first.has_value();
    try {
      active = counted_early ? *std::exchange(first, std::nullopt) : count();
      count_failures.succeeded();
    } catch (const Error& e) {
      early_workers_.reset();
      const int in_a_row = count_failures.failed();
      if (in_a_row >= 3 || (bounded && deps_.clock.now() >= deadline)) {
        throw;
      }
      log_.warn("could not count the active flow runs (failure " + std::to_string(in_a_row) +
                " of 3), asking again in 1 s: " + e.what());
      if (!deps_.sleeper.sleep_for(count_failures.delay())) {
        check_stop();
      }
      continue;
    }
    const auto elapsed = since(start);
    if (active == 0) {
      log_.info("no active flow runs in pool \"" + config_.work_pool + "\" after " +
                format_seconds(elapsed));
      return;
    }
    early_workers_.reset();  // old by the time the pool can be paused
    if (bounded && deps_.clock.now() >= deadline) {
      throw Error(ExitCode::kWaitTimeout,
                  "wait timed out after " + std::to_string(config_.wait_timeout.count()) +
                      " s (PREFECT_WAIT_TIMEOUT_SECONDS) with " + std::to_string(active) +
                      " flow run(s) still active in pool \"" + config_.work_pool + "\"",
                  Hint::kWaitTimeout);
    }
    if (counted_early) {
      // Counted while the worker set the last final states: counted again now.
      log_.debug(std::to_string(active) +
                 " active flow run(s) counted in the worker's last lap: counting again");
      continue;
    }
    std::string progress = std::to_string(active) + " active flow run(s) in pool \"" +
                           config_.work_pool + "\"; waited " + format_seconds(elapsed);
    auto pause_for = std::chrono::duration_cast<std::chrono::milliseconds>(config_.wait_poll);
    if (bounded) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - deps_.clock.now());
      progress += ", " + format_seconds(left) + " left";
      pause_for = std::max(std::chrono::milliseconds(0), std::min(pause_for, left));
    }
    log_.info(progress);
    if (!deps_.sleeper.sleep_for(pause_for)) {
      check_stop();
    }
  }
}

// Throws when the pool may still be resumed (summary_.pool_paused_at_end = false).
void CycleRun::pause() {
  if (!resume_attempted_) {
    skip(quiet_ ? "nothing due or active: the pool stayed paused" : "the pool was not resumed");
    return;
  }
  // Their names exclude ours: our row may stay while they are read.
  const std::string others =
      config_.auto_pause == AutoPause::kOn ? wait_for_other_workers() : std::string();
  if (config_.auto_pause == AutoPause::kOff) {
    start_forgetting_own_worker();
    skip("PREFECT_AUTO_PAUSE is off: the pool stays resumed");
    return;
  }
  if (!others.empty()) {
    start_forgetting_own_worker();
    summary_.pool_left_resumed_for = others;
    skip("other worker(s) of the pool are active (" + others +
         "): not pausing so as not to stop them; the last cycle to finish pauses "
         "(PREFECT_AUTO_PAUSE=force pauses anyway)");
    log_.warn(current_message_);
    return;
  }
  // Our worker row, ONLINE, outlives the pause (unless other workers were
  // waited for): Prefect's Foreman marks only a READY pool without an
  // online worker NOT_READY, so it cannot write NOT_READY over our PAUSED.
  // The row goes after the pause, its DELETE in flight while the cycle's
  // event is sent (run()).
  const bool our_row_online = row_online();
  try {
    send_pause();
  } catch (const Error& e) {
    start_forgetting_own_worker();
    summary_.pool_paused_at_end = false;
    Error error(ExitCode::kApi,
                std::string("could not pause work pool \"") + config_.work_pool +
                    "\": it MAY STILL BE RESUMED: " + e.message(),
                Hint::kPauseFailed);

    if (summary_.message.empty()) {
      summary_.message = error.what();
    }
    throw error;
  }
  summary_.pool_paused_at_end = true;
  log_.info("work pool \"" + config_.work_pool + "\" paused");
  start_forgetting_own_worker();
  // Quiet: no worker of ours made it READY, the Foreman leaves it alone.
  if (!quiet_ && !our_row_online) {
    keep_status_paused();
  }
}

// Whether our worker row is surely ONLINE now: the native worker made it,
// and its last heartbeat was less than two intervals ago (the Foreman
// marks a row OFFLINE after three). Prefect's worker CLI keeps its own row.
bool CycleRun::row_online() const {
  return worker_registered_ && worker_ended_at_ &&
         deps_.clock.now() - *worker_ended_at_ < config_.heartbeat_interval;
}

// Prefect's Foreman marks a READY pool with no online worker NOT_READY. One
// that selected the pool before the pause committed (the last online
// worker had just gone OFFLINE: a long wait after our worker's end, or
// Prefect's worker CLI) writes NOT_READY over PAUSED after it: is_paused
// stays true, so no run is offered, but the pool shows "Not Ready". Read
// back, it is paused again (at most twice) while it says so.
void CycleRun::keep_status_paused() {
  for (int again = 0; again < 2 && !paused_as_read(); ++again) {
    log_.info("work pool \"" + config_.work_pool +
              "\" is paused but its status is not PAUSED (Prefect's Foreman marked it at the "
              "same moment): pausing it again");
    try {
      deps_.client.set_work_pool_paused(config_.work_pool, true, pause_options());
    } catch (const Error& e) {
      log_.warn(std::string("could not pause the pool again to set its status: ") + e.what());
      return;
    }
  }
}

// The pause's PATCH: transient answers are retried by the client, and any
// failure (a 500, an unreadable answer, retries used up) gets the tries of
// a call that must not be lost. After a first stop signal they keep their
// spacing within kPauseAfterStop; a second signal allows one short try
// more. Pausing twice is harmless.
void CycleRun::send_pause() {
  for (int attempt = 1;; ++attempt) {
    const bool hurried = deps_.hurry();
    try {
      deps_.client.set_work_pool_paused(config_.work_pool, true, pause_options());
      return;
    } catch (const Error& e) {
      const auto delay = kMustNotBeLost.delay_after(attempt);
      const bool out_of_time = pause_deadline_ && deps_.clock.now() + delay >= *pause_deadline_;
      if (kMustNotBeLost.last(attempt) || hurried || out_of_time) {
        throw;
      }
      log_.warn("pausing failed (attempt " + std::to_string(attempt) + " of " +
                std::to_string(kMustNotBeLost.attempts) + ", next in " + format_seconds(delay) +
                "): " + e.what());
      // Cut short by a second signal: the next try is the short one.
      deps_.sleeper.sleep_through(delay);
    }
  }
}

// One try of the pause: its retries wait through a first stop signal; the
// whole of it is bounded by kPauseTry, by what is left of kPauseAfterStop
// once a signal arrived, and by kHurriedTry after a second.
RequestOptions CycleRun::pause_options() {
  RequestOptions options;
  options.through_stop = true;
  if (deps_.hurry()) {
    options.deadline = kHurriedTry;
    return options;
  }
  options.deadline = kPauseTry;
  if (deps_.stop_signal() != 0) {
    const auto now = deps_.clock.now();
    if (!pause_deadline_) {
      pause_deadline_ = now + kPauseAfterStop;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*pause_deadline_ - now);
    options.deadline = std::clamp(left, std::chrono::milliseconds(1000), *options.deadline);
  }
  return options;
}

// Whether the pool, read back after the pause, has the status PAUSED (or
// none: agent pools; or was resumed since, by a cycle starting: not ours to
// pause). A failed read says yes: the pause itself was answered.
bool CycleRun::paused_as_read() {
  try {
    const auto pool = deps_.client.read_work_pool(config_.work_pool);
    return !pool || !pool->is_paused || pool->status.empty() || pool->status == "PAUSED";
  } catch (const Error& e) {
    log_.debug(std::string("could not read the pool back after the pause: ") + e.what());
    return true;
  }
}

// Our worker row goes away at the end, so that other cycles deciding
// whether to pause do not count us as active: once the pool is paused (or
// left resumed), its DELETE in flight while the cycle's event is sent.
// Started once, by the pause or else by run().
void CycleRun::start_forgetting_own_worker() {
  if (!worker_registered_) {
    return;  // none, or its DELETE already sent
  }
  worker_registered_ = false;
  // After a stop signal the platform's grace is running out: one short try.
  RequestOptions options;
  if (deps_.stop_signal() != 0) {
    options.retry = false;
    options.deadline = kHurriedTry;
  }
  try {
    forgetting_ = deps_.client.start_delete_worker(config_.work_pool, config_.worker_name, options);
  } catch (const Error& e) {
    log_.debug(std::string("could not delete our worker row: ") + e.what());
  }
}

// Waits for the DELETE (its request timeout bounds the wait).
void CycleRun::finish_forgetting_own_worker() {
  while (forgetting_) {
    for (const auto& [id, error] : deps_.client.poll_started(std::chrono::milliseconds(100))) {
      if (id != *forgetting_) {
        continue;
      }
      forgetting_.reset();
      if (const auto e = error_of(error)) {
        log_.debug(std::string("could not delete our worker row: ") + e->what());
      }
    }
  }
}

// Names of other workers that heartbeated within their interval, after
// waiting up to 10 s for them to finish (several cycles ending together).
std::string CycleRun::wait_for_other_workers() {
  const auto give_up = deps_.clock.now() + std::chrono::seconds(deps_.hurry() ? 0 : 10);
  bool logged = false;
  while (true) {
    std::string names;
    try {
      // The first time, those read with the wait's last count, if any.
      auto workers = std::exchange(early_workers_, std::nullopt);
      if (!workers) {
        workers = deps_.client.read_workers(config_.work_pool);
      }
      const auto now = deps_.clock.wall_now();
      for (const auto& worker : *workers) {
        auto since = worker.since_heartbeat(now);
        if (worker.name != config_.worker_name && since &&
            *since < worker.heartbeat_interval() + std::chrono::seconds(5)) {
          names += (names.empty() ? "" : ", ") + worker.name;
        }
      }
    } catch (const Error& e) {
      log_.warn(std::string("could not list the pool's workers: ") + e.what());
      return "";
    }
    if (names.empty() || deps_.clock.now() >= give_up || deps_.stop_signal() != 0) {
      return names;
    }
    if (!logged) {
      log_.info("other worker(s) of the pool are active (" + names +
                "): waiting up to 10 s for them to finish before pausing");
      logged = true;
      // They may be waiting for us as we wait for them: our row goes now,
      // so that they do not count us, and the last to finish pauses.
      start_forgetting_own_worker();
      finish_forgetting_own_worker();
    }
    deps_.sleeper.sleep_for(std::chrono::milliseconds(1000));
  }
}

// The summary's runs: the final state the worker saw of its runs, read
// again only for the others (another host's, or one the worker left in a
// state that is not final); none read when the worker saw them all end.
void CycleRun::collect_runs() {
  if (tracked_ids_.empty()) {
    return;
  }
  auto final_seen = [this](const std::string& id) {
    auto it = worker_records_.find(id);
    if (it == worker_records_.end()) {
      return false;
    }
    const auto type = parse_state_type(it->second.state_type);
    return type && is_terminal(*type);
  };
  std::vector<std::string> ids;
  for (const auto& id : tracked_ids_) {
    if (!final_seen(id)) {
      ids.push_back(id);
    }
  }
  std::map<std::string, FlowRun> found;
  try {
    found = deps_.client.read_flow_runs_by_id(ids);
  } catch (const Error& e) {
    log_.warn(std::string("could not read the final states of the flow runs: ") + e.what());
  }
  for (const auto& id : tracked_ids_) {
    if (final_seen(id)) {
      summary_.runs.push_back(worker_records_.at(id));
    } else if (auto it = found.find(id); it != found.end()) {
      summary_.runs.push_back(run_record(it->second, it->second.state));
    } else {
      summary_.runs.push_back({id, "", "UNKNOWN", "", ""});
    }
  }
}

bool CycleRun::any_run_failed() const {
  return std::any_of(summary_.runs.begin(), summary_.runs.end(), [](const RunRecord& r) {
    return r.state_type == "FAILED" || r.state_type == "CRASHED";
  });
}

}  // namespace pc::cycle_detail
