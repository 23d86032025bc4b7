// The writes of flow runs (state proposals, PATCHes, alone or several at
// once) and how a call started without waiting ends. The reads, and the
// started heartbeat and DELETE: client.cpp.
#include "prefect/client.hpp"

#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>

namespace pc {

using json = nlohmann::json;

namespace {

ApiClient::Call set_state_call(const StateProposal& p) {
  json details = p.state.state_details.is_object() ? p.state.state_details : json::object();
  details["flow_run_id"] = p.flow_run_id;
  details["transition_id"] = p.transition_id;
  json state_json{{"type", to_string(p.state.type)}, {"state_details", details}};
  if (!p.state.name.empty()) {
    state_json["name"] = p.state.name;
  }
  if (!p.state.message.empty()) {
    state_json["message"] = p.state.message;
  }
  return {"POST", "/flow_runs/" + url_encode_segment(p.flow_run_id) + "/set_state",
          json{{"state", state_json}, {"force", p.force}}};
}

SetStateResult set_state_result(const ApiResponse& response, const StateProposal& p) {
  if (response.status == 404) {
    throw api_error("flow run " + p.flow_run_id + " not found when setting its state",
                    Hint::kApiGone);
  }
  SetStateResult result = decode_set_state_result(response.body);
  // PreventDuplicateTransitions answers a retried proposal that was already
  // applied with REJECT and the current state, which carries our id.
  if (result.status == SetStateStatus::kReject && result.state && applied(p, *result.state)) {
    result.status = SetStateStatus::kAccept;
  }
  return result;
}

ApiClient::Call patch_call(const FlowRunPatch& p) {
  return {"PATCH", "/flow_runs/" + url_encode_segment(p.flow_run_id) + (p.labels ? "/labels" : ""),
          p.body};
}

void check_patched(const ApiResponse& response, const FlowRunPatch& p) {
  if (response.status == 404) {
    throw api_error("flow run " + p.flow_run_id + " not found when updating " +
                        (p.labels ? "its labels" : "it"),
                    Hint::kApiGone);
  }
}

}  // namespace

bool applied(const StateProposal& proposal, const State& state) {
  if (state.type != proposal.state.type || proposal.transition_id.empty()) {
    return false;
  }
  const auto it = state.state_details.find("transition_id");
  return it != state.state_details.end() && it->is_string() && *it == proposal.transition_id;
}

SetStateResult PrefectClient::set_flow_run_state(const std::string& flow_run_id,
                                                 const StateCreate& state, bool force,
                                                 const std::string& transition_id) {
  const StateProposal proposal{flow_run_id, state, force, transition_id};
  const ApiClient::Call call = set_state_call(proposal);
  return set_state_result(api_.request(call.method, call.path, call.body), proposal);
}

std::vector<Outcome<SetStateResult>> PrefectClient::set_flow_run_states(
    const std::vector<StateProposal>& proposals) {
  std::vector<ApiClient::Call> calls;
  calls.reserve(proposals.size());
  for (const auto& proposal : proposals) {
    calls.push_back(set_state_call(proposal));
  }
  auto results = api_.request_all(calls);
  std::vector<Outcome<SetStateResult>> outcomes(proposals.size());
  for (std::size_t i = 0; i < proposals.size(); ++i) {
    try {
      outcomes[i].value = set_state_result(results[i].get(), proposals[i]);
    } catch (...) {
      outcomes[i].error = std::current_exception();
    }
  }
  return outcomes;
}

std::vector<std::exception_ptr> PrefectClient::patch_flow_runs(
    const std::vector<FlowRunPatch>& patches, const RequestOptions& options) {
  std::vector<ApiClient::Call> calls;
  calls.reserve(patches.size());
  for (const auto& patch : patches) {
    calls.push_back(patch_call(patch));
  }
  auto results = api_.request_all(calls, options);
  std::vector<std::exception_ptr> errors(patches.size());
  for (std::size_t i = 0; i < patches.size(); ++i) {
    try {
      check_patched(results[i].get(), patches[i]);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  return errors;
}

ApiClient::CallId PrefectClient::start(const ApiClient::Call& call, const RequestOptions& options,
                                       std::function<void(const ApiResponse&)> check) {
  return start_answered(
      call, options,
      [this, check = std::move(check)](ApiClient::CallId id, const ApiClient::Result& result) {
        std::exception_ptr error;
        try {
          check(result.get());
        } catch (...) {
          error = std::current_exception();
        }
        ended_.emplace_back(id, error);
      });
}

ApiClient::CallId PrefectClient::start_patch(const FlowRunPatch& patch,
                                             const RequestOptions& options) {
  return start(patch_call(patch), options,
               [patch](const ApiResponse& response) { check_patched(response, patch); });
}

PrefectClient::Call<SetStateResult> PrefectClient::proposal_call(const StateProposal& proposal) {
  return {set_state_call(proposal),
          [proposal](const ApiResponse& response) { return set_state_result(response, proposal); }};
}

bool PrefectClient::reads_only(const ApiClient::Call& call) {
  if (call.method == "GET") {
    return true;
  }
  auto ends_with = [&call](std::string_view tail) {
    return call.path.size() >= tail.size() &&
           call.path.compare(call.path.size() - tail.size(), tail.size(), tail) == 0;
  };
  return call.method == "POST" && (ends_with("/filter") || call.path == "/flow_runs/count");
}

RequestOptions PrefectClient::lock_free_if_reads(std::span<const ApiClient::Call> calls,
                                                 RequestOptions options) {
  options.takes_no_lock =
      options.takes_no_lock || std::all_of(calls.begin(), calls.end(), reads_only);
  return options;
}

ApiClient::CallId PrefectClient::start_answered(const ApiClient::Call& call,
                                                const RequestOptions& options, Answered answered) {
  const ApiClient::CallId id = api_.start(call, lock_free_if_reads({&call, 1}, options));
  answered_.emplace(id, std::move(answered));
  return id;
}

void PrefectClient::start_together(
    const std::vector<ApiClient::Call>& calls,
    std::function<void(const std::vector<ApiClient::Result>&)> done) {
  if (calls.empty()) {
    done({});
    return;
  }
  struct Gathering {
    std::vector<ApiClient::Result> results;
    std::size_t left;
    std::function<void(const std::vector<ApiClient::Result>&)> done;
  };
  auto gathering = std::make_shared<Gathering>(
      Gathering{std::vector<ApiClient::Result>(calls.size()), calls.size(), std::move(done)});
  for (std::size_t i = 0; i < calls.size(); ++i) {
    start_answered(calls[i], {},
                   [gathering, i](ApiClient::CallId, const ApiClient::Result& result) {
                     gathering->results[i] = result;
                     if (--gathering->left == 0) {
                       gathering->done(gathering->results);
                     }
                   });
  }
}

std::vector<std::pair<ApiClient::CallId, std::exception_ptr>> PrefectClient::poll_started(
    std::chrono::milliseconds wait) {
  // Every answer goes to its handler, even after one of them threw: the
  // first exception is rethrown then, and the calls checked in this poll
  // are returned by the next.
  std::exception_ptr thrown;
  for (auto& [id, result] : api_.poll(wait)) {
    auto handler = answered_.extract(id);
    if (handler.empty()) {
      continue;
    }
    try {
      handler.mapped()(id, result);
    } catch (...) {
      if (!thrown) {
        thrown = std::current_exception();
      }
    }
  }
  if (thrown) {
    std::rethrow_exception(thrown);
  }
  return std::exchange(ended_, {});
}

void PrefectClient::update_flow_run(const std::string& id, const json& patch,
                                    const RequestOptions& options) {
  const FlowRunPatch p{id, patch, false};
  const ApiClient::Call call = patch_call(p);
  check_patched(api_.request(call.method, call.path, call.body, options), p);
}

void PrefectClient::update_flow_run_labels(const std::string& id, const json& labels,
                                           const RequestOptions& options) {
  const FlowRunPatch p{id, labels, true};
  const ApiClient::Call call = patch_call(p);
  check_patched(api_.request(call.method, call.path, call.body, options), p);
}

}  // namespace pc
