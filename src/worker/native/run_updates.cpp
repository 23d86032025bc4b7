#include "worker/native/run_updates.hpp"

#include <exception>
#include <utility>

namespace pc {

void RunUpdates::add(std::string what, Logger log, FlowRunPatch patch) {
  new_.push_back({std::move(what), std::move(log), std::move(patch)});
}

void RunUpdates::send_new() {
  send(std::exchange(new_, {}), Mode::kInFlight);
}

void RunUpdates::send_due(bool last) {
  const auto now = clock_.now();
  std::vector<Update> pending = std::exchange(retry_, {});
  std::vector<Update> due;
  for (auto& update : pending) {
    if (!last && update.due > now) {
      retry_.push_back(std::move(update));
    } else {
      due.push_back(std::move(update));
    }
  }
  send(std::move(due), last ? Mode::kLast : Mode::kInFlight);
}

// kInFlight: started (ApiClient::start), without the client's retries;
// kLast: at once and waited for (ApiClient::request_all), with them.
// Failures are deferred (when last: warned about).
void RunUpdates::send(std::vector<Update> updates, Mode mode) {
  if (updates.empty()) {
    return;
  }
  if (mode == Mode::kInFlight) {
    for (auto& update : updates) {
      const auto id = client_.start_patch(update.patch,
                                          RequestOptions{.retry = false, .deadline = std::nullopt});
      in_flight_.emplace(id, std::move(update));
    }
    return;
  }
  std::vector<FlowRunPatch> patches;
  patches.reserve(updates.size());
  for (const auto& update : updates) {
    patches.push_back(update.patch);
  }
  auto errors = client_.patch_flow_runs(patches);
  for (std::size_t i = 0; i < updates.size(); ++i) {
    if (const auto e = error_of(errors[i])) {
      updates[i].log.warn("could not " + updates[i].what + ": " + e->what());
    }
  }
}

bool RunUpdates::ended(ApiClient::CallId id, const std::exception_ptr& error) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) {
    return false;
  }
  Update update = std::move(it->second);
  in_flight_.erase(it);
  if (const auto e = error_of(error)) {
    defer(std::move(update), *e);
  }
  return true;
}

void RunUpdates::defer(Update update, const Error& e) {
  const int in_a_row = update.failures.failed();
  if (in_a_row > 2) {
    update.log.warn("could not " + update.what + " (" + std::to_string(in_a_row) +
                    " tries): " + e.what());
    return;
  }
  update.log.debug("could not " + update.what + ", will try again: " + e.what());
  update.due = clock_.now() + update.failures.delay();
  retry_.push_back(std::move(update));
}

}  // namespace pc
