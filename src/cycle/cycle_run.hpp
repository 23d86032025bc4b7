#pragma once
// The cycle's one run (internal to src/cycle/): the phases in order, each
// with its log lines and summary record, and the pause on every path.
// cycle.cpp: the run, preflight, resume, trigger and worker phases;
// cycle_end.cpp: the wait, the pause and the final states of the runs.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cycle/cycle.hpp"

namespace pc::cycle_detail {

using TimePoint = std::chrono::steady_clock::time_point;

inline std::string format_seconds(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

// Thrown inside a phase when a stop signal arrives; turns into 130/143.
struct Stopped {};

class CycleRun {
 public:
  CycleRun(const Config& config, const Logger& log, CycleDeps& deps, CycleSummary& summary)
      : config_(config), log_(log), deps_(deps), summary_(summary) {}

  ExitCode run();

 private:
  // Runs one phase with start/end log lines and a summary record. Skipped
  // entirely once a stop signal has arrived.
  template <typename F>
  void phase(const std::string& name, F&& body) {
    if (deps_.stop_signal() != 0) {
      summary_.phases.push_back({name, PhaseStatus::kSkipped, {}, "stop signal"});
      throw Stopped{};
    }
    run_phase(name, std::forward<F>(body));
  }

  template <typename F>
  void phase_always(const std::string& name, F&& body) {
    try {
      run_phase(name, std::forward<F>(body));
    } catch (const Stopped&) {
    } catch (const std::exception&) {
      // Recorded as the phase's "failed" line.
    }
  }

  template <typename F>
  void run_phase(const std::string& name, F&& body) {
    Logger plog = log_.with({{"phase", name}});
    plog.info("phase started");
    const auto start = deps_.clock.now();
    current_status_ = PhaseStatus::kOk;
    current_message_.clear();
    try {
      body();
    } catch (const Stopped&) {
      record(plog, name, PhaseStatus::kInterrupted, since(start), "stop signal");
      throw;
    } catch (const Error& e) {
      record(plog, name, PhaseStatus::kFailed, since(start), e.what());
      throw;
    } catch (const std::exception& e) {
      record(plog, name, PhaseStatus::kFailed, since(start),
             std::string("internal error: ") + e.what());
      throw;
    }
    record(plog, name, current_status_, since(start), current_message_);
  }

  void record(const Logger& plog, const std::string& name, PhaseStatus status,
              std::chrono::milliseconds duration, const std::string& message);

  void skip(const std::string& why) {
    current_status_ = PhaseStatus::kSkipped;
    current_message_ = why;
  }

  void check_stop() const {
    if (deps_.stop_signal() != 0) {
      throw Stopped{};
    }
  }

  // --- phases (cycle.cpp) ---------------------------------------------------
  void preflight();
  bool may_be_quiet() const;
  std::optional<WorkPool> read_pool();
  void check_quiet();
  FlowRunFilter active_runs_filter() const;
  void resume();
  void trigger();
  void work();
  void remember_due_runs();
  bool deadline_passed() const { return wait_deadline_ && deps_.clock.now() >= *wait_deadline_; }
  std::chrono::milliseconds since(TimePoint start) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deps_.clock.now() - start);
  }

  static constexpr const char* kQuiet = "nothing due or active";

  // --- the end (cycle_end.cpp) -----------------------------------------------
  void start_first_count();
  std::optional<std::int64_t> take_first_count();
  void wait();
  void pause();
  void send_pause();
  void keep_status_paused();
  RequestOptions pause_options();
  bool paused_as_read();
  bool row_online() const;
  void start_forgetting_own_worker();
  void finish_forgetting_own_worker();
  std::string wait_for_other_workers();
  void collect_runs();
  bool any_run_failed() const;

  const Config& config_;
  const Logger& log_;
  CycleDeps& deps_;
  CycleSummary& summary_;

  WorkPool pool_;
  std::vector<Deployment> deployments_;
  PreflightReport preflight_;
  std::set<std::string> tracked_ids_;
  std::map<std::string, RunRecord> worker_records_;  // what the worker saw of its runs, by id
  std::optional<ApiClient::CallId> forgetting_;      // the DELETE of our worker row, in flight
  bool worker_registered_ = false;  // a worker row of ours may exist, its DELETE not sent
  // The worker phase's end: our row's last heartbeat was at most one
  // interval before (row_online).
  std::optional<TimePoint> worker_ended_at_;
  bool resume_attempted_ = false;
  bool quiet_ = false;     // nothing to do: see check_quiet()
  bool due_read_ = false;  // remember_due_runs() has run
  // The first page of the due runs, read with the pool when the cycle may
  // be quiet (read_pool); none when that read failed: it is made again
  // where it is needed.
  std::optional<std::vector<FlowRun>> early_due_;
  // The pool's workers, read with the wait's first count (wait); none: pause reads them.
  std::optional<std::vector<Worker>> early_workers_;
  // The wait's first count and the pool's workers, started in the worker's
  // last lap (start_first_count), each filled when its answer arrives.
  struct FirstCount {
    std::optional<Outcome<std::int64_t>> active;
    std::optional<Outcome<std::vector<Worker>>> workers;
  };
  // Shared with the calls' handlers, which may run after the cycle's end.
  std::shared_ptr<FirstCount> first_count_;
  std::optional<TimePoint> wait_deadline_;
  // After a stop signal: until when the pause may keep trying (pause_options).
  std::optional<TimePoint> pause_deadline_;
  PhaseStatus current_status_ = PhaseStatus::kOk;
  std::string current_message_;
};

}  // namespace pc::cycle_detail
