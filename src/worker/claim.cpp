#include <algorithm>
#include <chrono>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "prefect/server_version.hpp"
#include "worker/native_worker.hpp"
#include "worker/recover.hpp"

// The native worker's claims (native_worker.hpp): from the queue of polled
// runs to runs that are ours, a batch at a time, each step in flight.

namespace pc {

using json = nlohmann::json;

// The free slots' next batch, unless a batch's re-read is in flight: the
// slots that free meanwhile wait for it and go in one read with each other.
void NativeWorker::Impl::fill_slots() {
  if (lookups_in_flight_) {
    return;
  }
  std::vector<FlowRun> batch;
  // At most one page of the re-read (FlowRunFilter's limit) per batch.
  const std::size_t most = static_cast<std::size_t>(FlowRunFilter{}.limit);
  while (static_cast<int>(running_.size() + claiming_ + batch.size()) < config_.flow_limit &&
         batch.size() < most && !queue_.empty() && options_.stop_reason().empty()) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    if (config_.drain && queue_.empty()) {
      exhausted_ = false;  // poll again once this one is taken
    }
  }
  if (!batch.empty()) {
    claim_and_launch(std::move(batch));
  }
}

// The runs that fill the free slots, step by step, each step's requests in
// flight together while the loop goes on (an API 100 ms away costs three
// round trips for the batch, not four per run, and other runs' requests go
// meanwhile): one re-read of them all, their PENDING proposals, then each
// one's process as soon as its answer is in, then their labels and
// infrastructure_pids.
void NativeWorker::Impl::claim_and_launch(std::vector<FlowRun> polled) {
  claiming_ += polled.size();
  auto batch = std::make_shared<const std::vector<FlowRun>>(std::move(polled));
  lookups_in_flight_ = true;
  look_up(*batch, [this, batch](const Outcome<std::map<std::string, FlowRun>>& reread) {
    lookups_in_flight_ = false;
    claiming_ -= batch->size();  // before anything that may throw: no run is left counted
    std::vector<Candidate> candidates = still_scheduled(*batch, reread);
    claiming_ += candidates.size();
    std::move(candidates.begin(), candidates.end(), std::back_inserter(unsent_claims_));
  });
}

// The PENDING proposals of the re-read runs that are due, each in flight on
// its own, once the first heartbeat has ended; called once per loop round,
// after the answers of that round (re-reads, heartbeats) have been handled.
void NativeWorker::Impl::send_claims() {
  if (!first_heartbeat_ended_) {
    return;
  }
  const auto now = clock_.now();
  std::vector<Candidate> later;
  for (auto& c : std::exchange(unsent_claims_, {})) {
    if (c.due > now) {
      later.push_back(std::move(c));
      continue;
    }
    const auto claim = PrefectClient::set_state_read(claim_of(c));  // before `c` moves
    client_.start_read(claim, [this, c = std::move(c)](const Outcome<SetStateResult>& outcome) {
      claim_answered(c, outcome);
    });
  }
  unsent_claims_ = std::move(later);
}

// A candidate's PENDING proposal. The message names us: on servers without
// flow-run labels it is how a later cycle tells that a prefect-cycle worker
// claimed the run.
StateProposal NativeWorker::Impl::claim_of(const Candidate& c) const {
  return {c.run.id,
          {StateType::kPending, "", claim_message(config_.worker_name), {}},
          false,
          c.transition_id};
}

// One claim's answer: the run launched when it is ours.
void NativeWorker::Impl::claim_answered(Candidate c, const Outcome<SetStateResult>& outcome) {
  if (const auto e = error_of(outcome.error)) {
    check_lost_claim(std::move(c), e->what());  // still counted in claiming_
    return;
  }
  --claiming_;  // before anything that may throw
  if (outcome.value->status == SetStateStatus::kWait) {
    if (!wait_as_asked(std::move(c), *outcome.value)) {
      ++skipped_;
    }
    return;
  }
  if (!accepted(*outcome.value, c.log)) {
    ++skipped_;
    return;
  }
  launch_claimed(c);
}

// A run that is ours: labelled and launched. One claimed while the cycle
// stops is launched and stopped at once, as one claimed just before it: its
// report then says why it did not run (final_state.hpp).
void NativeWorker::Impl::launch_claimed(const Candidate& c) {
  journal_.claimed(c.run, c.deployment.name, flow_name(c.run.flow_id));
  label(c.run, c.log);
  try {
    launch(c.run, c.deployment, c.log);
    if (stopping()) {
      Running& r = running_.at(c.run.id);
      r.stop_reason = stop_reason_;
      stop_process(r);
    }
  } catch (const Error& e) {
    // The run is ours and PENDING: it must not stay so.
    c.log.error(std::string("could not start the flow run: ") + e.what());
    journal_.state_set(c.run, "CRASHED",
                       std::string("its process could not be started: ") + e.what());
    ++claiming_;  // until its CRASHED report is recorded
    const StateProposal crashed{
        c.run.id,
        {StateType::kCrashed, "",
         std::string("Failed to submit flow run to infrastructure: ") + e.what()},
        false,
        new_uuid4()};
    propose({crashed}, [this, run = c.run](const std::vector<SetStateResult>& results) {
      --claiming_;
      records_.push_back(run_record(run, results[0].state));  // as a report's (report.cpp)
    });
  }
}

// Prefect lets a deployment's run leave a terminal state for PENDING (a
// manual rerun), so a PENDING proposal from a stale poll could run a
// finished run again. Claim only what is still SCHEDULED now (one read for
// the batch, with the lookups); a concurrent claim in the remaining window
// is ABORTed by the server.
std::vector<NativeWorker::Impl::Candidate> NativeWorker::Impl::still_scheduled(
    const std::vector<FlowRun>& polled, const Outcome<std::map<std::string, FlowRun>>& reread) {
  if (const auto e = error_of(reread.error)) {
    for (const auto& run : polled) {
      run_log(run).warn(std::string("skipped: cannot read the run before claiming it: ") +
                        e->what());
      ++skipped_;
    }
    return {};
  }
  const auto& current = *reread.value;
  std::vector<FlowRun> scheduled;  // in the order of the poll
  for (const auto& p : polled) {
    auto it = current.find(p.id);
    if (it == current.end() || it->second.current_type() != StateType::kScheduled) {
      run_log(p).info("skipped: no longer SCHEDULED (" +
                      (it != current.end() && it->second.current_type()
                           ? std::string(to_string(*it->second.current_type()))
                           : std::string("deleted")) +
                      "); another worker has it");
      ++skipped_;
      continue;
    }
    scheduled.push_back(it->second);
  }
  std::vector<Candidate> candidates;
  std::vector<StateProposal> cancels;  // of runs whose deployment is gone
  for (auto& run : scheduled) {
    Logger rlog = run_log(run);
    Deployment deployment;
    if (!run.deployment_id.empty()) {
      const auto known = deployments_.find(run.deployment_id);
      if (known == deployments_.end()) {
        // Its lookup failed (and was retried if the failure was transient):
        // left SCHEDULED, for a later poll or cycle.
        rlog.warn("skipped: cannot read its deployment " + run.deployment_id);
        ++skipped_;
        continue;
      }
      if (!known->second) {
        rlog.info("skipped: its deployment no longer exists; cancelling the run");
        journal_.state_set(run, "CANCELLED",
                           "its deployment " + run.deployment_id + " no longer exists");
        cancels.push_back(
            {run.id,
             {StateType::kCancelled, "",
              "Deployment " + run.deployment_id + " no longer exists, cancelled run."},
             true,
             new_uuid4()});
        ++skipped_;
        continue;
      }
      deployment = *known->second;
    }
    candidates.push_back({std::move(run), std::move(deployment), rlog, new_uuid4()});
  }
  if (!cancels.empty()) {
    claiming_ += cancels.size();  // until their answers are in
    propose(cancels,
            [this, n = cancels.size()](const std::vector<SetStateResult>&) { claiming_ -= n; });
  }
  return candidates;
}

// The batch's runs read again, with what their claims and launches will
// need and we do not know yet — deployments, flow names, the server's
// version — all at once, before the claims (one round trip, not four). A
// lookup that fails (a transient failure already retried by the client) is
// not made again, alone, as a stall of the loop: a run whose deployment
// cannot be read is skipped and stays SCHEDULED, a flow without its name
// goes without PREFECT__FLOW_NAME, and a server that cannot tell its
// version is taken to have labels. `done` gets the re-read.
void NativeWorker::Impl::look_up(
    const std::vector<FlowRun>& runs,
    std::function<void(Outcome<std::map<std::string, FlowRun>>)> done) {
  PrefectClient::Lookups wanted;
  std::set<std::string> deployments;
  std::set<std::string> flows;
  for (const auto& run : runs) {
    wanted.flow_run_ids.push_back(run.id);
    if (!run.deployment_id.empty() && deployments_.count(run.deployment_id) == 0 &&
        deployments.insert(run.deployment_id).second) {
      wanted.deployment_ids.push_back(run.deployment_id);
    }
    if (!run.flow_id.empty() && flow_names_.count(run.flow_id) == 0 &&
        flows.insert(run.flow_id).second) {
      wanted.flow_ids.push_back(run.flow_id);
    }
  }
  wanted.server_version = !labels_;
  client_.start_look_up(wanted, [this, done = std::move(done)](PrefectClient::LookupResults found) {
    for (auto& [id, outcome] : found.deployments) {
      if (outcome.value) {
        deployments_[id] = std::move(*outcome.value);  // none: deleted
      } else {
        log_.warn("cannot read deployment " + id + ": " + error_of(outcome.error)->message());
      }
    }
    for (auto& [id, outcome] : found.flows) {
      if (const auto e = error_of(outcome.error)) {
        log_.warn("cannot read flow " + id + ": " + e->message());  // its runs go without its name
      }
      flow_names_[id] = outcome.value ? outcome.value->value("name", "") : "";
    }
    if (found.server_version) {
      try {
        learn_features(found.server_version->get());
      } catch (const Error& e) {
        labels_ = true;  // a server that cannot say is assumed new
        journal_.learn(features_of(std::nullopt));
        log_.debug(std::string("cannot read the server's version, assuming labels: ") + e.what());
      }
    }
    done(std::move(*found.flow_runs));
  });
}

Logger NativeWorker::Impl::run_log(const FlowRun& run) const {
  return log_.with({{"flow_run", run.name}, {"flow_run_id", run.id}});
}

// A WAIT answer (rare: a concurrency limit): the run is proposed again after
// the delay asked for, from the loop (a timer: other runs go on meanwhile),
// at most 20 times. False when it is given up.
bool NativeWorker::Impl::wait_as_asked(Candidate c, const SetStateResult& result) {
  constexpr int kMostWaits = 20;
  if (stopping() || ++c.waits >= kMostWaits) {
    c.log.info("skipped: the server asked to wait (" + result.reason + ")" +
               (stopping() ? ", and the cycle is stopping" : " too many times"));
    return false;
  }
  const auto delay = std::chrono::milliseconds(
      static_cast<long long>(std::min(result.delay_seconds, 30.0) * 1000));
  c.log.info("server asked to wait " + std::to_string(delay.count()) +
             " ms before claiming: " + result.reason);
  c.due = clock_.now() + delay;
  c.transition_id = new_uuid4();
  ++claiming_;
  unsent_claims_.push_back(std::move(c));
  return true;
}

// An ACCEPT into PENDING is a claim; anything else is logged as a skip.
bool NativeWorker::Impl::accepted(const SetStateResult& result, const Logger& rlog) const {
  if (result.status == SetStateStatus::kAccept && result.state &&
      result.state->type == StateType::kPending) {
    rlog.debug("claimed (PENDING accepted)");
    return true;
  }
  std::string state = result.state
                          ? std::string(to_string(result.state->type)) +
                                (result.state->name.empty() ? "" : " (" + result.state->name + ")")
                          : "unknown";
  rlog.info("skipped: the server answered " + std::string(to_string(result.status)) +
            " to the PENDING proposal, the run is " + state +
            (result.reason.empty() ? "" : ": " + result.reason));
  return false;
}

// Labels as Prefect's worker sets them, and ours (kClaimLabel): it lets a
// later cycle, on any host, recognise runs we leave behind if we are killed.
void NativeWorker::Impl::label(const FlowRun& run, const Logger& rlog) {
  if (!labels_.value_or(true)) {
    return;  // the claim's PENDING message names us instead (recover.hpp)
  }
  json labels{{std::string(kClaimLabel), config_.worker_name},
              {"prefect.worker.name", config_.worker_name},
              {"prefect.worker.type", "process"},
              {"prefect.work-pool.name", pool_.name},
              {"prefect.work-pool.id", pool_.id}};
  updates_.add("label the flow run", rlog, {run.id, labels, true});
}

// What the server's release tells: whether it has flow-run labels.
void NativeWorker::Impl::learn_features(const std::string& version) {
  const ServerFeatures features = features_of(ServerVersion::parse(version));
  labels_ = features.flow_run_labels;
  journal_.learn(features);
  if (!features.missing().empty()) {
    log_.info("Prefect server " + version + ": " + features.missing());
  }
}

// After a failed PENDING proposal: the server may have applied it before
// its answer was lost (a reset, a malformed or oversized body, retries used
// up). The run is ours if its current state carries our transition_id; we
// then go on, so that it is not left PENDING for ever. The read is tried
// three times, 1 s and 2 s apart, on the loop's timers.
void NativeWorker::Impl::check_lost_claim(Candidate c, const std::string& error) {
  constexpr Tries kTries{3, std::chrono::seconds(1), true};
  FlowRunFilter filter;
  filter.ids = {c.run.id};
  const Logger rlog = c.log;
  start_tried<std::vector<FlowRun>>(
      {PrefectClient::flow_runs_read(filter)}, kTries,
      [rlog](std::size_t, int attempt, std::chrono::milliseconds next, const Error& e) {
        rlog.warn("cannot read the run after a failed claim (attempt " + std::to_string(attempt) +
                  ", next in " + std::to_string(next.count()) + " ms): " + e.what());
      },
      [this, c = std::move(c), error](std::vector<Outcome<std::vector<FlowRun>>> read) {
        --claiming_;  // before anything that may throw
        if (const auto e = error_of(read[0].error)) {
          c.log.error("cannot tell whether the failed claim was applied (" + e->message() +
                      "); if the run is PENDING with transition_id " + c.transition_id +
                      ", it is this cycle's");
          ++skipped_;
          return;
        }
        const auto& found = *read[0].value;
        const bool ours = std::any_of(found.begin(), found.end(), [&](const FlowRun& run) {
          return run.state && applied(claim_of(c), *run.state);
        });
        if (!ours) {
          c.log.warn("claim failed: " + error);
          ++skipped_;
          return;
        }
        c.log.warn(
            "the answer to our PENDING proposal was lost, but the server applied it: the run is "
            "ours");
        journal_.line(c.run.id, RunLogLevel::kWarning,
                      "The answer to the worker's PENDING proposal was lost, but the server "
                      "applied it: the run is this worker's");
        launch_claimed(c);
      });
}

}  // namespace pc
