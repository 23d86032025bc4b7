#pragma once
// A Prefect server in memory for the worker's unit tests (worker_test.cpp,
// native/*_test.cpp): scheduled runs, the filter, states, heartbeats, PATCHes.

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fake_clock.hpp"
#include "http/api_client.hpp"
#include "http/curl_transport.hpp"
#include "prefect/client.hpp"

namespace pc::testing {

using json = nlohmann::json;

inline HttpResponse answer(long status, const json& body = nullptr) {
  HttpResponse r;
  r.status = status;
  r.body = body.is_null() ? "" : body.dump();
  return r;
}

inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A Prefect server in memory, as far as the worker asks it: scheduled runs,
// the filter, states, heartbeats, PATCHes. Every request is recorded;
// `on_set_state` may answer a proposal itself (a WAIT, an ABORT, a lost
// answer), else the proposal is applied and ACCEPTed.
class FakePrefect : public HttpTransport {
 public:
  void add_run(const std::string& id, const std::string& type = "SCHEDULED") {
    runs_[id] =
        json{{"id", id},
             {"name", "run-" + id},
             {"state",
              {{"type", type}, {"state_details", {{"scheduled_time", "2026-12-01T00:00:00Z"}}}}}};
  }
  std::string type_of(const std::string& id) const { return runs_.at(id)["state"]["type"]; }
  const json& run(const std::string& id) const { return runs_.at(id); }
  void set_type(const std::string& id, const std::string& type, const std::string& message = "") {
    runs_[id]["state"] = json{{"type", type}, {"message", message}};
  }

  std::string version = "3.8.8";  // GET /admin/version
  std::vector<std::string> logs;  // POST /logs/: "<flow run id> <message>"
  std::vector<json> events;       // POST /events

  // Returns an answer to send instead of applying the proposal, or nullopt.
  std::function<std::optional<HttpResponse>(const std::string& id, const json& state, int nth)>
      on_set_state;

  // Called with each request's method and path before it is answered.
  std::function<void(const std::string& method, const std::string& path)> before;

  HttpResponse send(const HttpRequest& r) override {
    requests.push_back(r);
    const std::string path = r.url.substr(r.url.find("/api") + 4);
    const json body = r.body.empty() ? json() : json::parse(r.body);
    if (before) {
      before(r.method, path);
    }
    if (ends_with(path, "/get_scheduled_flow_runs")) {
      json due = json::array();
      for (const auto& [id, run] : runs_) {
        if (run["state"]["type"] == "SCHEDULED") {
          due.push_back({{"work_pool_id", "p1"}, {"work_queue_id", "q1"}, {"flow_run", run}});
        }
      }
      return answer(200, due);
    }
    if (fail_reads_of > 0 && reads_run(r, path, body)) {
      --fail_reads_of;
      return answer(500, {{"detail", "internal error"}});
    }
    if (path.rfind("/deployments/", 0) == 0) {
      return answer(404, {{"detail", "Deployment not found"}});  // every deployment is gone
    }
    if (ends_with(path, "/workers/heartbeat")) {
      ++heartbeats;
      if (fail_heartbeats > 0) {
        --fail_heartbeats;
        return answer(503, {{"detail", "database is locked"}});
      }
      return answer(204);
    }
    if (path == "/flow_runs/filter") {
      return answer(200, filter(body));
    }
    if (path == "/admin/version") {
      return answer(200, version);
    }
    if (r.method == "POST" && path == "/logs/") {
      for (const auto& line : body) {
        logs.push_back(line["flow_run_id"].get<std::string>() + " " +
                       line["message"].get<std::string>());
      }
      return answer(201);
    }
    if (r.method == "POST" && path == "/events") {
      for (const auto& event : body) {
        events.push_back(event);
      }
      return answer(204);
    }
    if (r.method == "PATCH") {
      patches.push_back(path + " " + r.body);
      if (fail_patches > 0) {
        --fail_patches;
        return answer(503, {{"detail", "database is locked"}});
      }
      return answer(204);
    }
    // "/flow_runs/{id}" and "/flow_runs/{id}/set_state"
    const std::string prefix = "/flow_runs/";
    const std::string rest = path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : "";
    const std::string id = rest.substr(0, rest.find('/'));
    const std::string states = "/flow_run_states/?flow_run_id=";
    if (r.method == "GET" && path.rfind(states, 0) == 0) {
      return answer(200, history_[path.substr(states.size())]);
    }
    if (r.method == "GET" && path == "/flow_runs/" + id) {
      return runs_.count(id) ? answer(200, runs_[id]) : answer(404, {{"detail", "not found"}});
    }
    if (r.method == "POST" && path == "/flow_runs/" + id + "/set_state") {
      const json& state = body["state"];
      proposals.push_back(id + " " + state["type"].get<std::string>() +
                          (body["force"].get<bool>() ? " forced" : ""));
      if (on_set_state) {
        if (auto scripted = on_set_state(id, state, ++proposals_of_[id])) {
          return *scripted;
        }
      }
      apply(id, state);
      return answer(
          201, {{"status", "ACCEPT"}, {"state", run(id)["state"]}, {"details", json::object()}});
    }
    return answer(500, {{"detail", "not scripted: " + r.method + " " + path}});
  }

  // A batch (ApiClient::request_all), or the requests started between two
  // polls, arrive last request first, as concurrent requests may; answers
  // still go back to their own requests.
  bool reverse_batches = false;
  std::vector<std::set<std::string>> batches;  // each batch's "METHOD /path"s
  std::vector<TransportOutcome> send_all(const std::vector<HttpRequest>& batch) override {
    auto& paths = batches.emplace_back();
    for (const auto& r : batch) {
      paths.insert(r.method + " " + r.url.substr(r.url.find("/api") + 4));
    }
    std::vector<TransportOutcome> outcomes(batch.size());
    for (std::size_t n = 0; n < batch.size(); ++n) {
      const std::size_t i = reverse_batches ? batch.size() - 1 - n : n;
      outcomes[i].response = send(batch[i]);
    }
    return outcomes;
  }

  // A request started without waiting (HttpTransport::start) is answered
  // only by the `slow_starts`-th poll() after its start: a far API, as the
  // loop sees it.
  int slow_starts = 0;
  int fail_patches = 0;     // the next PATCHes answered 503
  int fail_heartbeats = 0;  // the next heartbeats answered 503
  std::vector<std::string> started_paths;
  // The "METHOD /path"s of the requests started between two polls: in
  // flight at the same time.
  std::vector<std::set<std::string>> started_together;
  // When a request is started: its label (label_of) and those of the
  // started requests not answered yet.
  std::function<void(const std::string& label, const std::vector<std::string>& in_flight)> on_start;
  Ticket start(const HttpRequest& request) override {
    const std::string what =
        request.method + " " + request.url.substr(request.url.find("/api") + 4);
    if (on_start) {
      std::vector<std::string> in_flight;
      for (const auto& s : started_) {
        in_flight.push_back(label_of(s.request));
      }
      on_start(label_of(request), in_flight);
    }
    started_paths.push_back(what);
    if (std::exchange(polled_, false) || started_together.empty()) {
      started_together.emplace_back();
    }
    started_together.back().insert(what);
    if (slow_starts == 0 && !reverse_batches) {
      return HttpTransport::start(request);
    }
    started_.push_back({new_ticket(), request, std::max(1, slow_starts)});
    return started_.back().ticket;
  }
  std::vector<std::pair<Ticket, TransportOutcome>> poll(std::chrono::milliseconds wait) override {
    polled_ = true;
    if (slow_starts == 0 && !reverse_batches) {
      return HttpTransport::poll(wait);
    }
    std::vector<std::pair<Ticket, TransportOutcome>> answered;
    std::vector<Started> waiting;
    auto started = std::exchange(started_, {});
    if (reverse_batches) {
      std::reverse(started.begin(), started.end());
    }
    for (auto& s : started) {
      if (--s.polls_left > 0) {
        waiting.push_back(std::move(s));
      } else {
        answered.emplace_back(s.ticket, TransportOutcome{send(s.request), std::nullopt});
      }
    }
    started_ = std::move(waiting);
    return answered;
  }

  // "METHOD /path", and for a filter by ids the ids: "POST /flow_runs/filter r1,r3"
  // ("... r1,r3 by state" when it filters by state types too).
  static std::string label_of(const HttpRequest& r) {
    std::string label = r.method + " " + r.url.substr(r.url.find("/api") + 4);
    if (ends_with(label, "/flow_runs/filter") && !r.body.empty()) {
      const json body = json::parse(r.body);
      const json ids = body.value("flow_runs", json::object()).value("id", json::object());
      std::string joined;
      for (const auto& id : ids.value("any_", json::array())) {
        joined += (joined.empty() ? " " : ",") + id.get<std::string>();
      }
      label += joined;
      if (body.value("flow_runs", json::object()).contains("state")) {
        label += " by state";  // the cancellation check
      }
    }
    return label;
  }

  // Applies a proposal without answering it (its answer was lost). As
  // Prefect's CopyScheduledTime rule, a PENDING state that replaces a
  // SCHEDULED one gets its scheduled_time; each state goes to the history.
  void apply(const std::string& id, json state) {
    const json& current = runs_[id]["state"];
    if (state["type"] == "PENDING" && current.is_object() &&
        current.value("type", "") == "SCHEDULED" && current.contains("state_details")) {
      state["state_details"]["scheduled_time"] = current["state_details"]["scheduled_time"];
    }
    state["timestamp"] = "2026-12-01T00:00:" + std::to_string(10 + history_[id].size()) + "Z";
    history_[id].push_back(state);
    runs_[id]["state"] = std::move(state);
  }
  // Gives a run a deployment (every deployment is gone: 404).
  void set_deployment(const std::string& id, const std::string& deployment_id) {
    runs_[id]["deployment_id"] = deployment_id;
  }
  // The next reads of `failing_run`'s state (GET, or a filter by ids that
  // holds it) are answered 500.
  int fail_reads_of = 0;
  std::string failing_run;

  std::vector<HttpRequest> requests;
  std::vector<std::string> proposals;  // "r1 PENDING", "r1 CANCELLED forced", ...
  std::vector<std::string> patches;
  int heartbeats = 0;

 private:
  std::map<std::string, json> history_;  // each run's applied states, oldest first
  json filter(const json& body) const {
    json out = json::array();
    const json runs = body.value("flow_runs", json::object());
    for (const auto& [id, run] : runs_) {
      if (runs.contains("id")) {
        const auto& ids = runs["id"]["any_"];
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
          continue;
        }
      }
      if (runs.contains("state")) {
        const auto& types = runs["state"]["type"]["any_"];
        if (std::find(types.begin(), types.end(), run["state"]["type"]) == types.end()) {
          continue;
        }
      }
      out.push_back(run);
    }
    return out;
  }

  bool reads_run(const HttpRequest& r, const std::string& path, const json& body) const {
    if (r.method == "GET") {
      return path == "/flow_runs/" + failing_run;
    }
    if (path != "/flow_runs/filter") {
      return false;
    }
    const json ids = body.value("flow_runs", json::object()).value("id", json::object());
    const json any = ids.value("any_", json::array());
    return std::find(any.begin(), any.end(), failing_run) != any.end();
  }

  std::map<std::string, json> runs_;
  std::map<std::string, int> proposals_of_;
  struct Started {
    Ticket ticket;
    HttpRequest request;
    int polls_left;
  };
  std::vector<Started> started_;
  bool polled_ = false;  // since the last start()
};

// The server, and a client of it whose time is a FakeClock.
struct FakeApi {
  FakeClock clock;
  ClockedSleeper sleeper{clock};
  FakePrefect server;
  ApiClient api{server, ApiOptions{"http://h/api", "", "", std::chrono::seconds(5)}, Logger::null(),
                RetryPolicy{}, sleeper};
  PrefectClient client{api};
};

}  // namespace pc::testing
