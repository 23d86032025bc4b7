#include "worker/worker.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "common/error.hpp"
#include "job_config/default_template.hpp"
#include "worker/native/loop.hpp"
#include "worker/native/recover.hpp"

// The native worker's loop (loop.hpp): heartbeat, poll (poll.cpp), fill the
// free slots (claims.hpp, start.cpp), supervise, cancellations (cancel.cpp),
// reports (reports.hpp), stop.

namespace pc {
namespace {

// How long one supervision round may wait for output or an exit: short, so
// stop requests, heartbeats and polls are never late by more than this.
constexpr std::chrono::milliseconds kSupervisePoll{100};
// The same while calls are in flight (a heartbeat, retried updates): their
// answers are looked at between two such waits.
constexpr std::chrono::milliseconds kRequestsPoll{10};
// After a failure, how long past the grace the worker waits for its runs'
// reports (settle_after_failure).
constexpr std::chrono::seconds kSettleLimit{60};
// Failed heartbeats in a row after which claims go without a worker row.
constexpr int kFirstHeartbeatTries = 3;
namespace fs = std::filesystem;

// "N (S sockets)": the entries of /proc/self/fd and how many are sockets.
// The load test compares start and end: the other descriptors must match,
// the sockets are the API connections kept alive (at most
// PREFECT_CYCLE_MAX_CONNECTIONS, its multi handle's wake-up pair, and one).
std::string open_fds() {
  std::error_code ec;
  std::size_t n = 0;
  std::size_t sockets = 0;
  for (auto it = fs::directory_iterator("/proc/self/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
    std::error_code link_ec;
    if (fs::read_symlink(it->path(), link_ec).string().rfind("socket:", 0) == 0) {
      ++sockets;
    }
  }
  return std::to_string(n) + " (" + std::to_string(sockets) + " sockets)";
}

}  // namespace

NativeWorker::Impl::Impl(const Config& config, PrefectClient& client, Sleeper& sleeper,
                         WorkPool pool, NativeWorkerOptions options)
    : config_(config),
      client_(client),
      sleeper_(sleeper),
      pool_(std::move(pool)),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : steady_clock_),
      log_(Logger::null()),
      timers_(clock_),
      updates_(client, clock_),
      journal_(client, clock_, *config.redactor,
               WorkerEventContext{config.worker_name, "process", PREFECT_CYCLE_VERSION, pool_.id,
                                  pool_.name},
               RunJournal::Options{.logs = config.send_logs,
                                   .events = config.emit_events,
                                   .batch_interval = kJournalBatchInterval},
               log_),
      reports_(client, timers_, log_, journal_),
      claims_(config, pool_, client, timers_, log_, updates_, journal_, reports_,
              [this](const Candidate& c) { start_claimed(c); }),
      processes_(options_.starter ? options_.starter : real_processes()),
      heartbeat_failures_(std::chrono::seconds(1),
                          std::min<std::chrono::milliseconds>(std::chrono::seconds(32),
                                                              config.heartbeat_interval)) {
  if (pool_.base_job_template.empty()) {
    pool_.base_job_template = default_process_job_template();
  }
}

WorkerPhaseResult NativeWorker::Impl::run(const Logger& log) {
  log_ = log;
  const auto start_wall = std::chrono::system_clock::now();
  horizon_ = start_wall + config_.prefetch;
  log_.info("native worker \"" + config_.worker_name + "\" on pool \"" + pool_.name + "\": limit " +
            std::to_string(config_.flow_limit) + ", prefetch " +
            std::to_string(config_.prefetch.count()) + " s" +
            (config_.run_forever ? ", until stopped"
             : config_.drain     ? ", drain"
                                 : ", run once"));
  log_.debug("open file descriptors at start: " + open_fds());
  // The recovery before our first heartbeat: it would refresh the row that
  // tells whether a previous cycle with our name died. Its read goes with
  // the first poll (one round trip): the poll's SCHEDULED runs are none of
  // the PENDING and RUNNING ones it judges.
  std::optional<Outcome<std::vector<WorkerFlowRun>>> first_poll;
  if (config_.recover_stale_runs) {
    auto [candidates, polled] = client_.read_together(
        PrefectClient::flow_runs_read(stale_candidates_filter(config_)), poll_call());
    recover_stale_runs(config_, client_, options_.hostname, log_, std::move(candidates),
                       [this](const FlowRun& run, const std::string& why) {
                         journal_.state_set(run, "CRASHED", "found stale: " + why);
                       });
    first_poll = std::move(polled);
  }
  // Poll first: a run-once worker with nothing due stops here, without a
  // heartbeat, so it leaves no worker row to delete (two requests fewer).
  bool idle = false;
  try {
    if (!first_poll) {
      // Alone, and waited for: it decides whether there is anything to do.
      first_poll = std::get<0>(client_.read_together(poll_call()));
    }
    polled(std::move(*first_poll));
    idle = finished();
    if (!idle) {
      journal_.worker_started();
      heartbeat();  // in flight during the first re-read; done before the first claim
      loop();
    }
  } catch (const std::exception& e) {
    settle_after_failure(std::string("the worker failed: ") + e.what());
    throw;
  }
  if (!idle) {
    journal_.worker_stopped();
  }
  journal_.finish();  // its calls end within kJournalSendBound each
  while (busy() || journal_.pending()) {
    journal_.send();       // a batch that failed goes once more
    pump(kSupervisePoll);  // each call ends within its request timeout
  }
  updates_.send_due(true);
  log_.debug("open file descriptors at end: " + open_fds());
  log_.info("native worker done: " + std::to_string(started_) + " flow run(s) launched, " +
            std::to_string(claims_.skipped()) + " skipped");
  WorkerPhaseResult result;
  result.runs = reports_.take_records();
  result.registered = !idle;
  result.server_version = claims_.server_version();
  return result;
}

void NativeWorker::Impl::loop() {
  while (true) {
    const std::string stop = options_.hooks.stop_reason();
    if (!stop.empty() && !stopping()) {
      begin_stop(stop);
    }
    if (!stopping()) {
      fill_slots();
      if (finished()) {
        break;  // nothing to wait for: do not sit in supervise()
      }
    }
    supervise();
    updates_.send_new();  // the labels and infrastructure_pids of this round's launches
    updates_.send_due(false);
    if (!in_last_lap_ && last_lap()) {
      in_last_lap_ = true;
      // The last exit lines and the stopped event go with the reads of the
      // final states, not after them (finishing, the journal sends what
      // comes later at once); so does the cycle's first count.
      journal_.worker_stopped();
      journal_.finish();
      if (!stopping() && options_.hooks.last_lap) {
        options_.hooks.last_lap();
      }
    }
    journal_.send();
    claims_.send();  // those re-read, or whose WAIT has passed, in this round
    const auto now = clock_.now();
    report_progress(now);
    if (now >= next_heartbeat_) {
      heartbeat();
    }
    if (!running_.empty() && now >= next_cancel_check_ && !cancel_check_in_flight_) {
      check_cancellations();
    }
    if (stopping()) {
      if (settled()) {
        break;
      }
      continue;
    }
    if (wants_poll(now)) {
      poll();  // in flight; its runs are queued when it is answered
    }
    if (finished()) {
      break;
    }
  }
}

// One line every PREFECT_WAIT_POLL_SECONDS while runs are running: a long,
// silent flow run shows as alive, and a hung cycle as hung.
void NativeWorker::Impl::report_progress(TimePoint now) {
  if (running_.empty()) {
    next_progress_ = now + config_.wait_poll;  // a full interval after the first start
    return;
  }
  if (now < next_progress_) {
    return;
  }
  next_progress_ = now + config_.wait_poll;
  std::string names;
  int listed = 0;
  for (const auto& [id, r] : running_) {
    if (listed++ == 5) {
      names += ", ...";
      break;
    }
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - r.started);
    names += (names.empty() ? "" : ", ") + r.run.name + " (" + std::to_string(age.count()) + " s)";
  }
  log_.info(std::to_string(running_.size()) + " flow run(s) running: " + names + "; " +
                std::to_string(queue_.size()) + " queued, " + std::to_string(reports_.recorded()) +
                " done",
            {{"running", static_cast<long long>(running_.size())},
             {"queued", static_cast<long long>(queue_.size())},
             {"done", static_cast<long long>(reports_.recorded())}});
}

// One attempt, without the client's back-off (a 503 would stall the loop
// for 1 s), in flight while the loop goes on; a failed heartbeat is sent
// again from the loop 1 s later, then 2 s, 4 s, ... up to the interval. The
// poll before the first one has already shown that the API answers.
void NativeWorker::Impl::heartbeat() {
  if (heartbeat_call_) {
    return;
  }
  next_heartbeat_ = clock_.now() + config_.heartbeat_interval;
  heartbeat_call_ =
      client_.start_heartbeat(pool_.name, config_.worker_name, config_.heartbeat_interval,
                              RequestOptions{.retry = false, .deadline = std::nullopt});
}

void NativeWorker::Impl::heartbeat_ended(const std::exception_ptr& error) {
  heartbeat_call_.reset();
  const auto e = error_of(error);
  if (!e) {
    heartbeat_failures_.succeeded();
    claims_.allow();
    return;
  }
  const int in_a_row = heartbeat_failures_.failed();
  // A claim goes out once our worker row exists: a cycle killed later is
  // then judged by that row going silent (recover.hpp); without one its runs
  // would be nobody's to recover. A busy SQLite server fails a heartbeat
  // now and then: the claims wait for the next one, 1 s and 2 s later, and
  // go without a row only after kFirstHeartbeatTries failures in a row.
  if (in_a_row >= kFirstHeartbeatTries && !claims_.allowed()) {
    log_.warn("no worker row after " + std::to_string(in_a_row) +
              " failed heartbeats: claiming without one (a cycle killed now leaves runs that "
              "only a cycle with its name can recover): " +
              e->what());
    claims_.allow();
  }
  const auto retry_in = heartbeat_failures_.delay();
  // One failure that the next try repairs (a 503 from a busy SQLite server)
  // is routine; two in a row are worth a warning.
  log_.log(in_a_row >= 2 ? LogLevel::kWarn : LogLevel::kDebug,
           "worker heartbeat failed (" + std::to_string(in_a_row) + " in a row), next try in " +
               std::to_string(retry_in.count()) + " ms: " + e->what());
  next_heartbeat_ = clock_.now() + retry_in;
}

// The calls in flight that ended within `wait`, each to its owner.
void NativeWorker::Impl::pump(std::chrono::milliseconds wait) {
  for (const auto& [id, error] : client_.poll_started(wait)) {
    if (heartbeat_call_ == id) {
      heartbeat_ended(error);
    } else {
      updates_.ended(id, error);
    }
  }
}

// The free slots' next batch, unless a batch's re-read is in flight: the
// slots that free meanwhile wait for it and go in one read with each other.
void NativeWorker::Impl::fill_slots() {
  if (claims_.reading()) {
    return;
  }
  std::vector<FlowRun> batch;
  // At most one page of the re-read (FlowRunFilter's limit) per batch.
  const std::size_t most = static_cast<std::size_t>(FlowRunFilter{}.limit);
  while (static_cast<int>(running_.size() + claims_.in_flight() + batch.size()) <
             config_.flow_limit &&
         batch.size() < most && !queue_.empty() && options_.hooks.stop_reason().empty()) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    if (config_.drain && queue_.empty()) {
      exhausted_ = false;  // poll again once this one is taken
    }
  }
  if (!batch.empty()) {
    claims_.claim(std::move(batch));
  }
}

void NativeWorker::Impl::supervise() {
  if (busy()) {
    // Calls in flight: the processes and the API in turns, briefly each.
    if (!processes_->empty()) {
      processes_->run_once(kRequestsPoll);
    }
    pump(processes_->empty() ? kSupervisePoll : std::chrono::milliseconds(0));
  } else if (processes_->empty()) {
    // Nothing but timers (a WAIT's delay, a retry's): slept through even
    // while stopping, as a final report's next try must wait its delay.
    sleeper_.sleep_through(kSupervisePoll);
  } else {
    processes_->run_once(kSupervisePoll);
  }
  timers_.fire_due();
  const auto now = clock_.now();
  for (auto& [id, r] : running_) {
    r.out.tick(now);
    r.err.tick(now);
  }
  auto exited = std::move(exited_);
  exited_.clear();
  // Reported together: those of this round join the runs waiting for the
  // report read in flight.
  for (const auto& [id, status] : exited) {
    auto node = running_.extract(id);
    if (!node.empty()) {
      reports_.add(std::move(node), status);
    }
  }
  reports_.send();
}

// Whatever failed (an API error, or a bug of ours that threw), the runs we
// started must not stay PENDING/RUNNING: their processes are stopped and
// reported. A run whose call threw before it was on its way stays counted
// with nothing left to end it, so the wait also ends when nothing could
// settle a run any more (no process, call, timer or report left), and after
// the grace and kSettleLimit at the latest; the cycle reads those runs again.
void NativeWorker::Impl::settle_after_failure(const std::string& why) {
  if (settled()) {
    return;
  }
  begin_stop(why);
  const auto give_up = clock_.now() + config_.grace + kSettleLimit;
  while (!settled()) {
    const bool can_settle = busy() || !processes_->empty() || !timers_.empty() ||
                            !exited_.empty() || reports_.waiting();
    if (!can_settle || clock_.now() >= give_up) {
      const std::size_t left = claims_.in_flight() + reports_.in_flight() + running_.size();
      log_.warn("stopped waiting for " + std::to_string(left) +
                " flow run(s) after the failure: nothing more can account for them here; the "
                "cycle reads their states again");
      return;
    }
    supervise();
  }
}

void NativeWorker::Impl::begin_stop(const std::string& reason) {
  stop_reason_ = reason.empty() ? "stopped" : reason;
  claims_.stop();
  log_.warn("stopping: " + reason + "; " + std::to_string(running_.size()) +
            " flow run process(es) get SIGTERM, SIGKILL after " +
            std::to_string(config_.grace.count()) + " s");
  queue_.clear();
  for (auto& [id, r] : running_) {
    r.stop_reason = stop_reason_;
    stop_process(r);
  }
}

NativeWorker::NativeWorker(const Config& config, PrefectClient& client, Sleeper& sleeper,
                           WorkPool pool, NativeWorkerOptions options)
    : impl_(std::make_unique<Impl>(config, client, sleeper, std::move(pool), std::move(options))) {}

NativeWorker::~NativeWorker() = default;

WorkerPhaseResult NativeWorker::run(const Logger& log) {
  return impl_->run(log);
}

}  // namespace pc
