#pragma once
// What the native worker tells Prefect about the runs it claims, for
// Prefect's UI and automations: the lines Prefect's own worker writes on a
// run's Logs tab (logger prefect.flow_runs.worker, in its wording where it
// has one) and its four events (prefect.worker.started,
// .submitted-flow-run, .executed-flow-run, .stopped; events.hpp).
//
// Best effort, never in a run's way: lines and events are queued and sent
// in flight with the loop's other requests, one POST /logs/ and one POST
// /events at a time, each batch once its oldest item has waited
// kJournalBatchInterval, once it holds kJournalBatchBytes, or in the
// worker's last lap: a few requests a cycle, not a few per run. (Prefect's
// own log handler batches every 2 s; on a SQLite-backed server, where
// writes go one after another, each POST /logs/ holds up the claims and
// the final states for a round trip.) POST /events takes no database lock
// on the server (Prefect queues events for its persister), so on a server
// that answered 503 it goes beside the other writes, not in their line.
// Each send is one attempt with a deadline of kJournalSendBound and no
// retries; a failed batch goes once more with the next send, then is
// dropped with a debug line. A route the server does not have (events
// before Prefect 3.0, a 404) is not used again: one debug line, never a
// failed request per run. The worker's end waits for the last batch of
// each route, sent at once: at most 2 x kJournalSendBound (10 s) when the
// server hangs, a few milliseconds when it answers. A failure never changes
// a run's state or the exit code.
// Secrets are redacted from every line and event (the config's Redactor).

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/redact.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"
#include "prefect/events.hpp"
#include "prefect/server_version.hpp"
#include "process/process.hpp"

namespace pc {

// How long one send may take (its deadline, connection included).
inline constexpr std::chrono::milliseconds kJournalSendBound{5000};
// How long a line or event waits for others to share its request.
inline constexpr std::chrono::milliseconds kJournalBatchInterval{5000};
// A batch this large goes without waiting: what is queued stays small
// however many runs a cycle starts.
inline constexpr std::size_t kJournalBatchBytes = std::size_t{32} * 1024;

class RunJournal {
 public:
  struct Options {
    bool logs = true;    // PREFECT_CYCLE_SEND_LOGS
    bool events = true;  // PREFECT_CYCLE_EMIT_EVENTS
    std::chrono::milliseconds batch_interval = kJournalBatchInterval;
  };
  // `clock` and `log` (its debug lines) must outlive the journal.
  RunJournal(PrefectClient& client, const Clock& clock, const Redactor& redactor,
             WorkerEventContext worker, Options options, const Logger& log);

  // What the server takes, once known (the worker learns its version with
  // its first lookups); until then everything stays queued. Cloud and
  // unknown versions take both.
  void learn(const ServerFeatures& features);

  // --- what happened (each one call at its site in the worker)
  // prefect.worker.started / .stopped (the stopped one follows it; said
  // once, and only after a started one).
  void worker_started();
  void worker_stopped();
  // "Worker 'w' submitting flow run '<id>'": the run is ours (its PENDING
  // proposal was accepted); later calls for it need only its id.
  void claimed(const FlowRun& run, const std::string& deployment_name,
               const std::string& flow_name);
  // The process is running: its pid and how it was started (forked from the
  // warm launcher or spawned cold); prefect.worker.submitted-flow-run.
  void started(const std::string& flow_run_id, const std::string& pid, bool warm);
  // The process could not be started.
  void not_started(const std::string& flow_run_id, const std::string& why);
  // The process ended: Prefect's exit line and explanation (exit_info.hpp)
  // and prefect.worker.executed-flow-run with the pid and the status code.
  void ended(const std::string& flow_run_id, const ExitStatus& status);
  // We set the run's state ourselves, and why (CRASHED after SIGTERM, a
  // lost start, a stale run of another host, CANCELLED for a gone
  // deployment). `run` may be one the worker never claimed (recovery).
  void state_set(const FlowRun& run, const std::string& state, const std::string& why);
  // Any other line on a run's Logs tab.
  void line(const std::string& flow_run_id, RunLogLevel level, const std::string& message);

  // Starts what is queued, if nothing of its kind is in flight and its
  // oldest item has waited the batch interval (the loop calls it once a
  // round; the client's poll_started() ends the calls); after finish(),
  // at once.
  void send();
  // Lines and events in flight, or queued to be sent by a later send() (a
  // failed batch waits for the next one): false once nothing more would go.
  bool pending() const;
  // Once no run will start any more (the last lap: only reports left) and
  // at the worker's end: the server's release is read (one GET
  // /admin/version) if it is still unknown and something is queued (the
  // lines of stale runs a worker that claimed nothing recovered), then what
  // is queued is started, and all that is queued later goes at once. The
  // caller waits for the calls in flight. Called again, it only sends.
  void finish();

 private:
  // Items kept as their (redacted) JSON text: a quarter of what parsed
  // objects take, while they wait for their batch.
  struct Batch {
    std::vector<std::string> items;
    std::size_t bytes = 0;
    int tries = 0;                                  // sends of its oldest items so far
    std::chrono::steady_clock::time_point since{};  // when its first item came
  };
  struct Route {
    const char* name;  // "logs", "events"
    bool wanted = true;
    bool in_flight = false;
    Batch queued;
  };
  void add(Route& route, const nlohmann::json& item);
  void start(Route& route, bool events);
  void failed(Route& route, Batch batch, const std::exception_ptr& error);

  PrefectClient& client_;
  const Clock& clock_;
  const Redactor& redactor_;
  WorkerEventContext worker_;
  const Logger& log_;
  std::chrono::milliseconds batch_interval_;
  bool finishing_ = false;  // finish() was called: no more waiting to batch
  bool features_known_ = false;
  Route logs_{"logs", true, false, {}};
  Route events_{"events", true, false, {}};
  std::optional<std::string> started_event_;
  bool stopped_ = false;
  struct Run {
    RunResources resources;
    std::string pid;
    std::optional<std::string> submitted_event;
  };
  std::map<std::string, Run> runs_;
  // Expires with the journal: an answer that comes after it (a worker that
  // threw with a batch in flight) is ignored.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace pc
