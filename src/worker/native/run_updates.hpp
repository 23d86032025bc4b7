#pragma once
// Best-effort updates of the runs a worker starts: their labels and their
// infrastructure_pid. They describe a run; they must not hold up the next
// claim. They are in flight while the loop goes on, once each, without the
// client's retries; after a failure (Prefect's SQLite server answers 503
// "database is locked" under load, and the client's first retry would stall
// the worker's loop for 1 s) one is sent again 1 s and 2 s later from the
// loop, in flight, and at the end of the phase with the client's full retry
// policy.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "http/retry.hpp"
#include "log/logger.hpp"
#include "prefect/client.hpp"

namespace pc {

class RunUpdates {
 public:
  // `clock` says when a failed update is due again.
  RunUpdates(PrefectClient& client, const Clock& clock) : client_(client), clock_(clock) {}

  // Queues an update of a run being started; `what` names it in messages
  // ("label the flow run").
  void add(std::string what, Logger log, FlowRunPatch patch);
  // Starts the queued updates, in flight: the loop goes on without waiting
  // for their answers.
  void send_new();
  // Starts again the failed updates that are due; they are in flight while
  // the loop goes on. When `last` (none in flight any more): sends every
  // failed one with the client's retries and waits for them, since nothing
  // else waits.
  void send_due(bool last);
  // A started call ended (PrefectClient::poll_started); false when it is not
  // one of ours. A failed update is due again later (a timer of the loop).
  bool ended(ApiClient::CallId id, const std::exception_ptr& error);

 private:
  struct Update {
    std::string what;
    Logger log;
    FlowRunPatch patch;
    // Best effort: now, then 1 s and 2 s later (a timer of the loop), then
    // once more with retries when the phase ends.
    FailureStreak failures{std::chrono::seconds(1), std::chrono::seconds(2), false};
    std::chrono::steady_clock::time_point due{};
  };

  enum class Mode { kInFlight, kLast };
  void send(std::vector<Update> updates, Mode mode);
  void defer(Update update, const Error& e);

  PrefectClient& client_;
  const Clock& clock_;
  std::vector<Update> new_;    // of the runs being started
  std::vector<Update> retry_;  // failed, to send again
  std::map<ApiClient::CallId, Update> in_flight_;
};

}  // namespace pc
