#include "worker/native/run_journal.hpp"

#include <exception>
#include <utility>

#include "prefect/exit_info.hpp"

namespace pc {

using json = nlohmann::json;

RunJournal::RunJournal(PrefectClient& client, const Clock& clock, const Redactor& redactor,
                       WorkerEventContext worker, Options options, const Logger& log)
    : client_(client),
      clock_(clock),
      redactor_(redactor),
      worker_(std::move(worker)),
      log_(log),
      batch_interval_(options.batch_interval) {
  logs_.wanted = options.logs;
  events_.wanted = options.events;
}

void RunJournal::learn(const ServerFeatures& features) {
  features_known_ = true;
  if (events_.wanted && !features.events) {
    events_.wanted = false;
    events_.queued = {};
    log_.debug("Prefect server without events: the worker's events are not sent");
  }
}

void RunJournal::worker_started() {
  json event = worker_started_event(worker_);
  started_event_ = event["id"].get<std::string>();
  add(events_, event);
}

void RunJournal::worker_stopped() {
  if (!started_event_ || std::exchange(stopped_, true)) {
    return;  // no worker started, or said already
  }
  add(events_, worker_stopped_event(worker_, started_event_));
}

void RunJournal::claimed(const FlowRun& run, const std::string& deployment_name,
                         const std::string& flow_name) {
  runs_[run.id] = Run{RunResources{run, deployment_name, flow_name}, {}, {}};
  line(run.id, RunLogLevel::kInfo,
       "Worker '" + worker_.worker_name + "' submitting flow run '" + run.id + "'");
}

void RunJournal::started(const std::string& flow_run_id, const std::string& pid, bool warm) {
  auto it = runs_.find(flow_run_id);
  if (it == runs_.end()) {
    return;
  }
  it->second.pid = pid;
  line(flow_run_id, RunLogLevel::kInfo,
       "Opened process " + pid + " for flow run '" + it->second.resources.run.name + "' (" +
           (warm ? "warm: forked from the preloaded launcher" : "cold: a new Python") + ")");
  if (events_.wanted) {
    json event = run_submitted_event(worker_, it->second.resources);
    it->second.submitted_event = event["id"].get<std::string>();
    add(events_, event);
  }
}

void RunJournal::not_started(const std::string& flow_run_id, const std::string& why) {
  line(flow_run_id, RunLogLevel::kError,
       "Failed to start process for flow run '" + flow_run_id + "': " + why);
}

void RunJournal::ended(const std::string& flow_run_id, const ExitStatus& status) {
  auto it = runs_.find(flow_run_id);
  if (it == runs_.end()) {
    return;
  }
  const ExitInfo info = exit_info(status);
  line(flow_run_id, info.level, exit_line(it->second.resources.run.name, info));
  if (info.status_code != 0) {
    line(flow_run_id, RunLogLevel::kInfo, info.resolution);
  }
  if (events_.wanted) {
    add(events_, run_executed_event(worker_, it->second.resources, it->second.pid, info.status_code,
                                    it->second.submitted_event));
  }
}

void RunJournal::state_set(const FlowRun& run, const std::string& state, const std::string& why) {
  line(run.id, RunLogLevel::kWarning,
       "Worker '" + worker_.worker_name + "' set flow run '" + run.name + "' to " + state + ": " +
           why);
}

void RunJournal::line(const std::string& flow_run_id, RunLogLevel level,
                      const std::string& message) {
  add(logs_, run_log_record(flow_run_id, level, message, std::chrono::system_clock::now()));
}

// Through the Redactor as text: a secret anywhere in a message or a label.
void RunJournal::add(Route& route, const json& item) {
  if (!route.wanted) {
    return;
  }
  if (route.queued.items.empty()) {
    route.queued.since = clock_.now();
  }
  std::string text = redactor_.redact(item.dump());
  route.queued.bytes += text.size();
  route.queued.items.push_back(std::move(text));
}

void RunJournal::send() {
  if (!features_known_) {
    return;
  }
  start(logs_, false);
  start(events_, true);
}

void RunJournal::finish() {
  if (std::exchange(finishing_, true)) {
    send();  // the release was read, or could not be, the first time
    return;
  }
  if (!features_known_ && (!logs_.queued.items.empty() || !events_.queued.items.empty())) {
    try {
      learn(features_of(ServerVersion::parse(client_.read_server_version())));
    } catch (const Error& e) {
      log_.debug(
          std::string("cannot read the server's version; the worker's lines are not sent: ") +
          e.what());
      return;
    }
  }
  send();
}

bool RunJournal::pending() const {
  auto waits = [this](const Route& r) {
    return r.in_flight || (features_known_ && r.wanted && !r.queued.items.empty());
  };
  return waits(logs_) || waits(events_);
}

void RunJournal::start(Route& route, bool events) {
  if (!route.wanted || route.in_flight || route.queued.items.empty() ||
      (!finishing_ && route.queued.bytes < kJournalBatchBytes &&
       clock_.now() - route.queued.since < batch_interval_)) {
    return;
  }
  Batch batch = std::exchange(route.queued, {});
  ++batch.tries;
  route.in_flight = true;
  json items = json::array();
  for (const auto& text : batch.items) {
    json item = json::parse(text, nullptr, false);
    if (!item.is_discarded()) {  // a redaction that broke the JSON: that item is lost
      items.push_back(std::move(item));
    }
  }
  const auto call = events ? PrefectClient::events_call(items) : PrefectClient::logs_call(items);
  const RequestOptions options{.retry = false,
                               .deadline = kJournalSendBound,
                               .through_stop = false,
                               .takes_no_lock = events};
  client_.start_write(call, options,
                      [this, &route, alive = std::weak_ptr<int>(alive_),
                       batch = std::move(batch)](const std::exception_ptr& error) mutable {
                        if (alive.expired()) {
                          return;
                        }
                        route.in_flight = false;
                        if (error) {
                          failed(route, std::move(batch), error);  // again from the next send()
                          return;
                        }
                        start(route, &route == &events_);  // what was queued meanwhile
                      });
}

// Once more with the next batch; a 404 means the route is not there at all.
void RunJournal::failed(Route& route, Batch batch, const std::exception_ptr& error) {
  long status = 0;
  try {
    std::rethrow_exception(error);
  } catch (const HttpStatusError& e) {
    status = e.status();
  } catch (...) {
    status = 0;
  }
  const std::string what = error_of(error)->what();
  if (status == 404 || status == 405) {
    route.wanted = false;
    route.queued = {};
    log_.debug(std::string("Prefect server has no ") + route.name + " route; not sending " +
               route.name + ": " + what);
    return;
  }
  if (batch.tries >= 2) {
    log_.debug("dropped " + std::to_string(batch.items.size()) + " " + route.name +
               " for Prefect's UI after " + std::to_string(batch.tries) + " tries: " + what);
    return;
  }
  log_.debug(std::string("sending ") + route.name + " failed, once more with the next: " + what);
  for (auto& item : route.queued.items) {
    batch.items.push_back(std::move(item));
  }
  batch.bytes += route.queued.bytes;
  route.queued = std::move(batch);
}

}  // namespace pc
