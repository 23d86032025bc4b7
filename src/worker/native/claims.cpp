#include "worker/native/claims.hpp"

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
#include "worker/native/claims.hpp"
#include "worker/native/recover.hpp"
#include "worker/native/tried_calls.hpp"

namespace pc {

using json = nlohmann::json;

// The runs that fill the free slots, step by step, each step's requests in
// flight together while the loop goes on (an API 100 ms away costs three
// round trips for the batch, not four per run, and other runs' requests go
// meanwhile): one re-read of them all, their PENDING proposals, then each
// one's process as soon as its answer is in, then their labels and
// infrastructure_pids.
void Claims::claim(std::vector<FlowRun> polled) {
  for (const auto& run : polled) {
    claiming_.insert(run.id);
  }
  auto batch = std::make_shared<const std::vector<FlowRun>>(std::move(polled));
  lookups_in_flight_ = true;
  look_up(*batch, [this, batch](const Outcome<std::map<std::string, FlowRun>>& reread) {
    lookups_in_flight_ = false;
    for (const auto& run : *batch) {
      claiming_.erase(run.id);  // before anything that may throw: no run is left in flight
    }
    std::vector<Candidate> candidates = still_scheduled(*batch, reread);
    for (const auto& c : candidates) {
      claiming_.insert(c.run.id);
    }
    std::move(candidates.begin(), candidates.end(), std::back_inserter(unsent_));
  });
}

void Claims::stop() {
  stopping_ = true;
  for (const auto& c : unsent_) {
    claiming_.erase(c.run.id);  // not proposed: still SCHEDULED, nobody's
  }
  unsent_.clear();
}

// The PENDING proposals of the re-read runs that are due, each in flight on
// its own, once the first heartbeat has ended; called once per loop round,
// after the answers of that round (re-reads, heartbeats) have been handled.
void Claims::send() {
  if (!allowed_) {
    return;
  }
  const auto now = timers_.clock().now();
  std::vector<Candidate> later;
  for (auto& c : std::exchange(unsent_, {})) {
    if (c.due > now) {
      later.push_back(std::move(c));
      continue;
    }
    const auto claim = PrefectClient::proposal_call(claim_of(c));  // before `c` moves
    client_.start_call(claim, [this, c = std::move(c)](const Outcome<SetStateResult>& outcome) {
      answered(c, outcome);
    });
  }
  unsent_ = std::move(later);
}

// A candidate's PENDING proposal. The message names us: on servers without
// flow-run labels it is how a later cycle tells that a prefect-cycle worker
// claimed the run.
StateProposal Claims::claim_of(const Candidate& c) const {
  return {.flow_run_id = c.run.id,
          .state = {StateType::kPending, "", claim_message(config_.worker_name), {}},
          .force = false,
          .transition_id = c.transition_id};
}

// One claim's answer: the run started when it is ours.
void Claims::answered(Candidate c, const Outcome<SetStateResult>& outcome) {
  if (const auto e = error_of(outcome.error)) {
    lost_answer(std::move(c), e->what());  // still in flight
    return;
  }
  if (outcome.value->status == SetStateStatus::kWait) {
    const std::string id = c.run.id;
    if (!wait_as_asked(std::move(c), *outcome.value)) {
      skip(id);
    }
    return;
  }
  claiming_.erase(c.run.id);  // before anything that may throw
  if (!accepted(*outcome.value, c.log)) {
    ++skipped_;
    return;
  }
  claimed(c, *outcome.value->state);
}

// Prefect accepts PENDING from COMPLETED, FAILED and CRASHED as well (a
// rerun), so a claim that reaches the server after the run was claimed,
// executed and ended by another worker since our re-read (a SQLite server
// holds a proposal for seconds while its neighbours write) is ACCEPTed and
// would run it again. Its rule CopyScheduledTime copies scheduled_time into
// a PENDING state only from SCHEDULED: an accepted PENDING without it did
// not replace the SCHEDULED state we read, and the run goes back to the
// state it had instead of running (give_back).
void Claims::claimed(const Candidate& c, const State& pending) {
  const auto it = pending.state_details.find("scheduled_time");
  if (it == pending.state_details.end() || !it->is_string() || it->get<std::string>().empty()) {
    ++skipped_;
    give_back(c);
    return;
  }
  journal_.claimed(c.run, c.deployment.name, flow_name(c.run.flow_id));
  label(c.run, c.log);
  start_(c);
}

// A claim accepted from another state than SCHEDULED (claimed()): the run's
// previous state is proposed again, forced, instead of our PENDING. The run
// stays in claiming_ while its states are read, then in Reports' set until
// that proposal's answer is in.
void Claims::give_back(const Candidate& c) {
  c.log.warn(
      "not started: the server accepted our PENDING proposal from another state than "
      "SCHEDULED (another worker claimed and ended the run after we read it SCHEDULED); "
      "setting its previous state again");
  journal_.line(c.run.id, RunLogLevel::kWarning,
                "Not started: the server accepted this worker's PENDING proposal from another "
                "state than SCHEDULED (another worker ran the flow run after this one read it); "
                "its previous state is set again");
  claiming_.insert(c.run.id);
  const Logger rlog = c.log;
  start_tried<std::vector<State>>(
      client_, timers_, {PrefectClient::flow_run_states_read(c.run.id)}, kMustNotBeLost,
      [rlog](std::size_t, int attempt, std::chrono::milliseconds next, const Error& e) {
        rlog.warn("cannot read the run's states (attempt " + std::to_string(attempt) +
                  ", next in " + std::to_string(next.count()) + " ms): " + e.what());
      },
      [this, c](std::vector<Outcome<std::vector<State>>> read) {
        claiming_.erase(c.run.id);      // before anything that may throw
        const State* before = nullptr;  // the newest state that is not our PENDING
        if (read[0].value) {
          for (const auto& state : *read[0].value) {
            if (!applied(claim_of(c), state)) {
              before = &state;
            }
          }
        }
        if (before == nullptr) {
          const auto e = error_of(read[0].error);
          c.log.error("cannot set the run's previous state again (" +
                      (e ? e->message() : std::string("no state before ours")) +
                      "): it stays PENDING with transition_id " + c.transition_id);
          return;
        }
        // Its type, name and message; its details were the server's.
        reports_.propose_final({{.flow_run_id = c.run.id,
                                 .state = {before->type, before->name, before->message, {}},
                                 .force = true,
                                 .transition_id = new_uuid4()}});
      });
}

void Claims::skip(const std::string& id) {
  claiming_.erase(id);
  ++skipped_;
}

// Prefect lets a deployment's run leave a terminal state for PENDING (a
// manual rerun), so a PENDING proposal from a stale poll could run a
// finished run again. Claim only what is still SCHEDULED now (one read for
// the batch, with the lookups); a concurrent claim in the remaining window
// is ABORTed by the server while the run is PENDING or RUNNING, and one
// accepted after the run ended is undone (claimed()).
std::vector<Candidate> Claims::still_scheduled(
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
            {.flow_run_id = run.id,
             .state = {StateType::kCancelled, "",
                       "Deployment " + run.deployment_id + " no longer exists, cancelled run."},
             .force = true,
             .transition_id = new_uuid4()});
        ++skipped_;
        continue;
      }
      deployment = *known->second;
    }
    candidates.push_back({std::move(run), std::move(deployment), rlog, new_uuid4()});
  }
  reports_.propose_final(cancels);  // in flight there until their answers are in
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
void Claims::look_up(const std::vector<FlowRun>& runs,
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

Logger Claims::run_log(const FlowRun& run) const {
  return log_.with({{"flow_run", run.name}, {"flow_run_id", run.id}});
}

// A WAIT answer (rare: a concurrency limit): the run is proposed again after
// the delay asked for, from the loop (a timer: other runs go on meanwhile),
// at most 20 times. False when it is given up.
bool Claims::wait_as_asked(Candidate c, const SetStateResult& result) {
  constexpr int kMostWaits = 20;
  if (stopping_ || ++c.waits >= kMostWaits) {
    c.log.info("skipped: the server asked to wait (" + result.reason + ")" +
               (stopping_ ? ", and the cycle is stopping" : " too many times"));
    return false;
  }
  const auto delay = std::chrono::milliseconds(
      static_cast<long long>(std::min(result.delay_seconds, 30.0) * 1000));
  c.log.info("server asked to wait " + std::to_string(delay.count()) +
             " ms before claiming: " + result.reason);
  c.due = timers_.clock().now() + delay;
  c.transition_id = new_uuid4();
  unsent_.push_back(std::move(c));  // still in flight
  return true;
}

// An ACCEPT into PENDING is a claim; anything else is logged as a skip.
bool Claims::accepted(const SetStateResult& result, const Logger& rlog) const {
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
void Claims::label(const FlowRun& run, const Logger& rlog) {
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
void Claims::learn_features(const std::string& version) {
  server_version_ = version;
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
void Claims::lost_answer(Candidate c, const std::string& error) {
  constexpr Tries kTries = kMustNotBeLost;
  FlowRunFilter filter;
  filter.ids = {c.run.id};
  const Logger rlog = c.log;
  start_tried<std::vector<FlowRun>>(
      client_, timers_, {PrefectClient::flow_runs_read(filter)}, kTries,
      [rlog](std::size_t, int attempt, std::chrono::milliseconds next, const Error& e) {
        rlog.warn("cannot read the run after a failed claim (attempt " + std::to_string(attempt) +
                  ", next in " + std::to_string(next.count()) + " ms): " + e.what());
      },
      [this, c = std::move(c), error](std::vector<Outcome<std::vector<FlowRun>>> read) {
        claiming_.erase(c.run.id);  // before anything that may throw
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
        claimed(c, *std::find_if(found.begin(), found.end(), [&](const FlowRun& run) {
                      return run.state && applied(claim_of(c), *run.state);
                    })->state);
      });
}

Claims::Claims(const Config& config, const WorkPool& pool, PrefectClient& client, Timers& timers,
               const Logger& log, RunUpdates& updates, RunJournal& journal, Reports& reports,
               Start start)
    : config_(config),
      pool_(pool),
      client_(client),
      timers_(timers),
      log_(log),
      updates_(updates),
      journal_(journal),
      reports_(reports),
      start_(std::move(start)) {
  if (is_prefect_cloud(config_.api_url)) {
    labels_ = true;  // Cloud has flow-run labels (and no /admin/version to ask)
    journal_.learn(features_of(std::nullopt));
  }
}

std::string Claims::flow_name(const std::string& flow_id) const {
  const auto it = flow_names_.find(flow_id);
  return it == flow_names_.end() ? "" : it->second;
}

}  // namespace pc
