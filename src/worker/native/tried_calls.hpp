#pragma once
// Calls that must not be lost (final proposals, the read after a lost
// claim), started together without waiting; those that failed are started
// again together after `tries`' delays, as timers of the loop (timers.hpp),
// never as a sleep. `failed` hears of each failure that is tried again (the
// call's index, the attempt, the delay, the error); `done` gets every call's
// last outcome, in their order.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "http/retry.hpp"
#include "prefect/client.hpp"
#include "worker/native/timers.hpp"

namespace pc {

using TriedFailure = std::function<void(std::size_t index, int attempt,
                                        std::chrono::milliseconds next, const Error& error)>;

template <typename T>
void start_tried(PrefectClient& client, Timers& timers, std::vector<PrefectClient::Call<T>> calls,
                 Tries tries, TriedFailure failed,
                 std::function<void(std::vector<Outcome<T>>)> done);

namespace tried_detail {

template <typename T>
struct Tried {
  PrefectClient& client;
  Timers& timers;
  std::vector<PrefectClient::Call<T>> calls;
  Tries tries;
  TriedFailure failed;
  std::function<void(std::vector<Outcome<T>>)> done;
  std::vector<Outcome<T>> outcomes;
  int attempt = 0;  // of the round in flight
};

// One round: the calls `which` started together.
template <typename T>
void round(const std::shared_ptr<Tried<T>>& tried, const std::vector<std::size_t>& which) {
  ++tried->attempt;
  std::vector<PrefectClient::Call<T>> calls;
  calls.reserve(which.size());
  for (const std::size_t i : which) {
    calls.push_back(tried->calls[i]);
  }
  tried->client.start_all(calls, [tried, which](std::vector<Outcome<T>> outcomes) {
    const auto next = tried->tries.delay_after(tried->attempt);
    std::vector<std::size_t> again;
    for (std::size_t k = 0; k < which.size(); ++k) {
      const auto e = error_of(outcomes[k].error);
      if (e && !tried->tries.last(tried->attempt)) {
        tried->failed(which[k], tried->attempt, next, *e);
        again.push_back(which[k]);
      }
      tried->outcomes[which[k]] = std::move(outcomes[k]);
    }
    if (again.empty()) {
      tried->done(std::move(tried->outcomes));
      return;
    }
    tried->timers.after(next, [tried, again] { round(tried, again); });
  });
}

}  // namespace tried_detail

template <typename T>
void start_tried(PrefectClient& client, Timers& timers, std::vector<PrefectClient::Call<T>> calls,
                 Tries tries, TriedFailure failed,
                 std::function<void(std::vector<Outcome<T>>)> done) {
  std::vector<std::size_t> all(calls.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  auto tried = std::make_shared<tried_detail::Tried<T>>(tried_detail::Tried<T>{
      client, timers, std::move(calls), tries, std::move(failed), std::move(done), {}, 0});
  tried->outcomes.resize(all.size());
  tried_detail::round(tried, all);
}

}  // namespace pc
