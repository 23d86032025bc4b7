#include "http/api_client.hpp"

#include <algorithm>

#include "http/call_state.hpp"

// ApiClient's started calls: a call in flight while the caller goes on,
// tried again on timers of poll(), never a sleep.

namespace pc {

using api_detail::busy_answer;
using api_detail::TimePoint;

ApiClient::CallId ApiClient::start(const Call& call, const RequestOptions& options) {
  const CallId id = next_call_++;
  Started entry{std::make_unique<Call::State>(*this, call, options), options.takes_no_lock};
  entry.retry_at = clock_.now();
  started_.emplace(id, std::move(entry));
  send_due();
  return id;
}

std::chrono::milliseconds ApiClient::send_due() {
  auto next = std::chrono::milliseconds::max();
  const auto now = clock_.now();
  // A call holding the server's write lock, on its way.
  bool in_flight = std::any_of(started_.begin(), started_.end(), [](const auto& e) {
    return e.second.ticket != 0 && !e.second.takes_no_lock;
  });
  for (auto& [id, entry] : started_) {
    if (entry.ticket != 0) {
      continue;
    }
    if (entry.retry_at > now) {
      next = std::min(next,
                      std::chrono::duration_cast<std::chrono::milliseconds>(entry.retry_at - now));
      continue;
    }
    if (one_at_a_time_ && in_flight && !entry.takes_no_lock) {
      continue;  // its turn comes when the one in flight has ended
    }
    if (entry.state->attempts() > 0) {
      entry.state->waited(entry.state->delay(), true);  // a retry: its delay has passed
    }
    try {
      entry.ticket = transport_.start(entry.state->next_request());
      in_flight = in_flight || !entry.takes_no_lock;
    } catch (const TransportError& e) {
      // Not on its way (libcurl could not take it): the attempt's outcome,
      // judged by the next poll() as any other, so the call still ends
      // there, and its owner hears of it.
      entry.retry_at = TimePoint::max();
      not_started_.emplace_back(id, TransportOutcome{std::nullopt, e});
    }
  }
  return next;
}

std::vector<std::pair<ApiClient::CallId, ApiClient::Result>> ApiClient::poll(
    std::chrono::milliseconds wait) {
  std::vector<std::pair<CallId, Result>> ended;
  // Retries whose delay has passed go out again (and, one at a time, calls
  // waiting their turn); the wait ends no later than the next one due.
  wait = std::min(wait, send_due());
  for (auto& [id, outcome] : std::exchange(not_started_, {})) {
    judge_started(id, std::move(outcome), false, ended);
  }
  if (!ended.empty()) {
    wait = std::chrono::milliseconds(0);
  }
  const auto sent_together = std::count_if(started_.begin(), started_.end(),
                                           [](const auto& e) { return e.second.ticket != 0; });
  for (auto& [ticket, outcome] : transport_.poll(wait)) {
    auto it = std::find_if(started_.begin(), started_.end(),
                           [ticket = ticket](const auto& e) { return e.second.ticket == ticket; });
    if (it == started_.end()) {
      continue;  // not ours (cannot happen: one client per transport)
    }
    judge_started(it->first, std::move(outcome), sent_together > 1, ended);
  }
  send_due();  // the turn of a call waiting for one that ended
  return ended;
}

void ApiClient::judge_started(CallId id, TransportOutcome outcome, bool sent_together,
                              std::vector<std::pair<CallId, Result>>& ended) {
  auto it = started_.find(id);
  if (sent_together && busy_answer(outcome)) {
    answered_busy();
  }
  Result result;
  try {
    result.response = it->second.state->judge(std::move(outcome));
  } catch (...) {
    result.error = std::current_exception();
  }
  if (result.response || result.error) {
    ended.emplace_back(id, std::move(result));
    started_.erase(it);
  } else {
    it->second.ticket = 0;  // to be tried again after its delay
    it->second.retry_at = clock_.now() + it->second.state->delay();
  }
}

void ApiClient::answered_busy() {
  if (one_at_a_time_) {
    return;
  }
  // Prefect's server on SQLite answers concurrent writes with 503
  // "database is locked" at once: requests in flight together only make
  // retries. From here on this client sends them one after another.
  one_at_a_time_ = true;
  log_.info(
      "the Prefect API answered 503/429 to requests sent together (a server on SQLite?): "
      "sending them one after another from now on");
}

}  // namespace pc
