#include "prefect/client.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <stdexcept>

namespace pc {
namespace {

using json = nlohmann::json;

std::string pool_path(const std::string& name) {
  return "/work_pools/" + url_encode_segment(name);
}

std::vector<std::string> state_names(const std::vector<StateType>& types) {
  std::vector<std::string> names;
  names.reserve(types.size());
  for (auto t : types) {
    names.emplace_back(to_string(t));
  }
  return names;
}

[[noreturn]] void unexpected(const std::string& what, const ApiResponse& response) {
  throw api_error(what + ": unexpected HTTP " + std::to_string(response.status), Hint::kApiAnswer);
}

constexpr const char* kVersionPath = "/admin/version";

// An answer that is a JSON array, each item decoded by `decode`; `what`
// ("POST /path") names it in the error. 404 -> empty where `missing` allows.
enum class Missing { kEmpty, kError };
template <typename T>
std::vector<T> list_answer(const std::string& what, const ApiResponse& response,
                           T (*decode)(const json&), Missing missing) {
  std::vector<T> items;
  if (response.status == 404 && missing == Missing::kEmpty) {
    return items;
  }
  if (!response.body.is_array()) {
    unexpected(what, response);
  }
  for (const auto& item : response.body) {
    items.push_back(decode(item));
  }
  return items;
}

std::string deployment_path(const std::string& id) {
  return "/deployments/" + url_encode_segment(id);
}

std::string flow_path(const std::string& id) {
  return "/flows/" + url_encode_segment(id);
}

// GET /deployments/{id}: 404 -> nullopt.
std::optional<Deployment> deployment_answer(const ApiResponse& response) {
  if (response.status == 404) {
    return std::nullopt;
  }
  return decode_deployment(response.body);
}

// GET /flows/{id}: the flow object; 404 -> Error.
json flow_answer(const std::string& id, const ApiResponse& response) {
  if (response.status == 404) {
    throw api_error("flow " + id + " not found", Hint::kApiGone);
  }
  if (!response.body.is_object()) {
    throw api_error("GET /flows/" + id + ": the answer is not a JSON object", Hint::kApiAnswer);
  }
  return response.body;
}

// GET /admin/version: the release, a JSON string.
std::string version_answer(const ApiResponse& response) {
  if (!response.body.is_string()) {
    unexpected(std::string("GET ") + kVersionPath, response);
  }
  return response.body.get<std::string>();
}

}  // namespace

json flow_run_filter_body(const FlowRunFilter& filter, bool paging) {
  json body = json::object();
  json runs = json::object();
  if (!filter.state_types.empty()) {
    runs["state"] = {{"type", {{"any_", state_names(filter.state_types)}}}};
  }
  if (!filter.ids.empty()) {
    runs["id"] = {{"any_", filter.ids}};
  }
  if (!runs.empty()) {
    body["flow_runs"] = runs;
  }
  if (!filter.work_pool_names.empty()) {
    body["work_pools"] = {{"name", {{"any_", filter.work_pool_names}}}};
  }
  if (paging) {
    body["limit"] = filter.limit;
    body["offset"] = filter.offset;
    body["sort"] = filter.sort;
  }
  return body;
}

std::string new_uuid4() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<unsigned> byte(0, 255);
  unsigned char b[16];
  for (auto& x : b) {
    x = static_cast<unsigned char>(byte(random));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

PrefectClient::Call<std::optional<WorkPool>> PrefectClient::work_pool_read(
    const std::string& name) {
  return {{"GET", pool_path(name), std::nullopt},
          [](const ApiResponse& response) -> std::optional<WorkPool> {
            if (response.status == 404) {
              return std::nullopt;
            }
            return decode_work_pool(response.body);
          }};
}

std::optional<WorkPool> PrefectClient::read_work_pool(const std::string& name) {
  return read(work_pool_read(name));
}

WorkPool PrefectClient::create_work_pool(const std::string& name, const std::string& type,
                                         const json& base_job_template) {
  json body{{"name", name}, {"type", type}};
  if (!base_job_template.empty()) {
    body["base_job_template"] = base_job_template;
  }
  auto response = api_.request("POST", "/work_pools/", body);
  if (response.status == 409) {
    if (auto pool = read_work_pool(name)) {
      return *pool;
    }
    throw api_error("work pool \"" + name + "\": creation conflicted but it cannot be read",
                    Hint::kApiGone);
  }
  return decode_work_pool(response.body);
}

void PrefectClient::set_work_pool_paused(const std::string& name, bool paused,
                                         const RequestOptions& options) {
  auto response = api_.request("PATCH", pool_path(name), json{{"is_paused", paused}}, options);
  if (response.status == 404) {
    throw api_error("work pool \"" + name + "\" not found at " + api_.base_url(), Hint::kApiGone);
  }
}

PrefectClient::Call<std::vector<Worker>> PrefectClient::workers_read(const std::string& pool) {
  std::string path = pool_path(pool) + "/workers/filter";
  return {{"POST", path, json::object()}, [path](const ApiResponse& response) {
            return list_answer("POST " + path, response, &decode_worker, Missing::kEmpty);
          }};
}

std::vector<Worker> PrefectClient::read_workers(const std::string& pool) {
  return read(workers_read(pool));
}

ApiClient::CallId PrefectClient::start_delete_worker(const std::string& pool,
                                                     const std::string& name,
                                                     const RequestOptions& options) {
  return start({"DELETE", pool_path(pool) + "/workers/" + url_encode_segment(name), std::nullopt},
               options, [](const ApiResponse&) {});  // a missing worker is fine
}

std::optional<Deployment> PrefectClient::read_deployment_by_name(const std::string& flow,
                                                                 const std::string& deployment) {
  auto response = api_.request("GET", "/deployments/name/" + url_encode_segment(flow) + "/" +
                                          url_encode_segment(deployment));
  if (response.status == 404) {
    return std::nullopt;
  }
  return decode_deployment(response.body);
}

std::optional<Deployment> PrefectClient::read_deployment(const std::string& id) {
  return deployment_answer(api_.request("GET", deployment_path(id)));
}

FlowRun PrefectClient::create_flow_run_from_deployment(const std::string& deployment_id,
                                                       const json& body) {
  // The server needs a body (no body -> 422); {} alone would also schedule
  // the run for now, the explicit state says so.
  const bool defaulted = body.is_null() || (body.is_object() && body.empty());
  auto response =
      api_.request("POST", "/deployments/" + url_encode_segment(deployment_id) + "/create_flow_run",
                   defaulted ? json{{"state", {{"type", "SCHEDULED"}}}} : body);
  if (response.status == 404) {
    throw api_error("deployment " + deployment_id + " not found when creating a flow run",
                    Hint::kApiGone);
  }
  return decode_flow_run(response.body);
}

json PrefectClient::read_flow(const std::string& id) {
  return flow_answer(id, api_.request("GET", flow_path(id)));
}

PrefectClient::Call<std::vector<FlowRun>> PrefectClient::flow_runs_read(
    const FlowRunFilter& filter) {
  return {{"POST", "/flow_runs/filter", flow_run_filter_body(filter, true)},
          [](const ApiResponse& response) {
            return list_answer("POST /flow_runs/filter", response, &decode_flow_run,
                               Missing::kError);
          }};
}

std::vector<FlowRun> PrefectClient::read_flow_runs(const FlowRunFilter& filter) {
  return read(flow_runs_read(filter));
}

std::map<std::string, FlowRun> PrefectClient::read_flow_runs_by_id(
    const std::vector<std::string>& ids) {
  std::map<std::string, FlowRun> found;
  const auto page = static_cast<std::size_t>(FlowRunFilter{}.limit);
  for (std::size_t first = 0; first < ids.size(); first += page) {
    FlowRunFilter filter;
    filter.ids.assign(
        ids.begin() + static_cast<std::ptrdiff_t>(first),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), first + page)));
    for (auto& run : read_flow_runs(filter)) {
      found.emplace(run.id, std::move(run));
    }
  }
  return found;
}

PrefectClient::Call<std::int64_t> PrefectClient::count_read(const FlowRunFilter& filter) {
  return {{"POST", "/flow_runs/count", flow_run_filter_body(filter, false)},
          [](const ApiResponse& response) {
            if (!response.body.is_number_integer()) {
              unexpected("POST /flow_runs/count", response);
            }
            return response.body.get<std::int64_t>();
          }};
}

std::int64_t PrefectClient::count_flow_runs(const FlowRunFilter& filter) {
  return read(count_read(filter));
}

std::optional<FlowRun> PrefectClient::read_flow_run(const std::string& id) {
  auto response = api_.request("GET", "/flow_runs/" + url_encode_segment(id));
  if (response.status == 404) {
    return std::nullopt;
  }
  return decode_flow_run(response.body);
}

PrefectClient::Call<std::vector<State>> PrefectClient::flow_run_states_read(
    const std::string& flow_run_id) {
  std::string path = "/flow_run_states/?flow_run_id=" + url_encode_segment(flow_run_id);
  return {{"GET", path, std::nullopt}, [path](const ApiResponse& response) {
            auto states = list_answer("GET " + path, response, &decode_state, Missing::kError);
            std::stable_sort(states.begin(), states.end(), [](const State& a, const State& b) {
              return a.timestamp < b.timestamp;  // ISO 8601 in UTC sorts as text
            });
            return states;
          }};
}

std::vector<State> PrefectClient::read_flow_run_states(const std::string& flow_run_id) {
  return read(flow_run_states_read(flow_run_id));
}

ApiClient::CallId PrefectClient::start_heartbeat(const std::string& pool,
                                                 const std::string& worker_name,
                                                 std::chrono::seconds interval,
                                                 const RequestOptions& options) {
  return start({"POST", pool_path(pool) + "/workers/heartbeat",
                json{{"name", worker_name}, {"heartbeat_interval_seconds", interval.count()}}},
               options, [pool](const ApiResponse& response) {
                 if (response.status == 404) {
                   throw api_error(
                       "work pool \"" + pool + "\" not found when sending the worker heartbeat",
                       Hint::kApiGone);
                 }
               });
}

PrefectClient::Call<std::vector<WorkerFlowRun>> PrefectClient::scheduled_runs_read(
    const std::string& pool, const std::vector<std::string>& queues,
    std::chrono::system_clock::time_point scheduled_before, std::optional<int> limit) {
  json body{{"work_queue_names", queues}, {"scheduled_before", format_iso8601(scheduled_before)}};
  if (limit) {
    body["limit"] = *limit;
  }
  std::string path = pool_path(pool) + "/get_scheduled_flow_runs";
  return {{"POST", path, std::move(body)}, [path](const ApiResponse& response) {
            return list_answer("POST " + path, response, &decode_worker_flow_run, Missing::kEmpty);
          }};
}

std::vector<WorkerFlowRun> PrefectClient::get_scheduled_flow_runs(
    const std::string& pool, const std::vector<std::string>& queues,
    std::chrono::system_clock::time_point scheduled_before, std::optional<int> limit) {
  return read(scheduled_runs_read(pool, queues, scheduled_before, limit));
}

std::optional<json> PrefectClient::read_variable_by_name(const std::string& name) {
  auto response = api_.request("GET", "/variables/name/" + url_encode_segment(name));
  if (response.status == 404) {
    return std::nullopt;
  }
  if (!response.body.is_object() || !response.body.contains("value")) {
    unexpected("GET /variables/name/" + name, response);
  }
  return response.body["value"];
}

std::optional<json> PrefectClient::read_block_document(const std::string& block_type_slug,
                                                       const std::string& name) {
  auto response = api_.request("GET", "/block_types/slug/" + url_encode_segment(block_type_slug) +
                                          "/block_documents/name/" + url_encode_segment(name) +
                                          "?include_secrets=true");
  if (response.status == 404) {
    return std::nullopt;
  }
  return response.body;
}

std::optional<json> PrefectClient::read_block_document_by_id(const std::string& id) {
  auto response =
      api_.request("GET", "/block_documents/" + url_encode_segment(id) + "?include_secrets=true");
  if (response.status == 404) {
    return std::nullopt;
  }
  return response.body;
}

PrefectClient::Call<std::string> PrefectClient::server_version_read() {
  return {{"GET", kVersionPath, std::nullopt}, version_answer};
}

std::string PrefectClient::read_server_version() {
  return read(server_version_read());
}

std::vector<PrefectClient::LookupPart> PrefectClient::lookup_parts(const Lookups& wanted) {
  // Each lookup a Call decoded as its single read would be (or that read's error).
  std::vector<LookupPart> parts;
  if (!wanted.flow_run_ids.empty()) {
    FlowRunFilter runs_filter;
    runs_filter.ids = wanted.flow_run_ids;
    if (wanted.flow_run_ids.size() > static_cast<std::size_t>(runs_filter.limit)) {
      throw std::logic_error("look_up: more flow run ids than one page holds");
    }
    auto runs = flow_runs_read(runs_filter);
    const Call<std::map<std::string, FlowRun>> by_id{runs.call,
                                                     [decode = runs.decode](const ApiResponse& r) {
                                                       std::map<std::string, FlowRun> found;
                                                       for (auto& run : decode(r)) {
                                                         found.emplace(run.id, std::move(run));
                                                       }
                                                       return found;
                                                     }};
    parts.emplace_back(by_id.call, [by_id](LookupResults& found, const ApiClient::Result& r) {
      found.flow_runs = decoded(by_id, r);
    });
  }
  for (const auto& id : wanted.deployment_ids) {
    const Call<std::optional<Deployment>> read{{"GET", deployment_path(id), std::nullopt},
                                               deployment_answer};
    parts.emplace_back(read.call, [read, id](LookupResults& found, const ApiClient::Result& r) {
      found.deployments[id] = decoded(read, r);
    });
  }
  for (const auto& id : wanted.flow_ids) {
    const Call<json> read{{"GET", flow_path(id), std::nullopt},
                          [id](const ApiResponse& r) { return flow_answer(id, r); }};
    parts.emplace_back(read.call, [read, id](LookupResults& found, const ApiClient::Result& r) {
      found.flows[id] = decoded(read, r);
    });
  }
  if (wanted.server_version) {
    const Call<std::string> read = server_version_read();
    parts.emplace_back(read.call, [read](LookupResults& found, const ApiClient::Result& r) {
      found.server_version = decoded(read, r);
    });
  }
  return parts;
}

std::vector<ApiClient::Call> PrefectClient::calls_of(const std::vector<LookupPart>& parts) {
  std::vector<ApiClient::Call> calls;
  calls.reserve(parts.size());
  for (const auto& part : parts) {
    calls.push_back(part.first);
  }
  return calls;
}

PrefectClient::LookupResults PrefectClient::gathered(
    const std::vector<LookupPart>& parts, const std::vector<ApiClient::Result>& results) {
  LookupResults found;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    parts[i].second(found, results[i]);
  }
  return found;
}

PrefectClient::LookupResults PrefectClient::look_up(const Lookups& wanted) {
  const auto parts = lookup_parts(wanted);
  const auto calls = calls_of(parts);
  return gathered(parts, api_.request_all(calls, lock_free_if_reads(calls, {})));
}

void PrefectClient::start_look_up(const Lookups& wanted, std::function<void(LookupResults)> done) {
  auto parts = lookup_parts(wanted);
  const auto calls = calls_of(parts);
  start_together(calls, [parts = std::move(parts),
                         done = std::move(done)](const std::vector<ApiClient::Result>& results) {
    done(gathered(parts, results));
  });
}

bool PrefectClient::health() {
  try {
    auto response =
        api_.request("GET", "/health", std::nullopt, {.retry = false, .deadline = std::nullopt});
    return response.status == 200 && response.body == true;
  } catch (const HttpStatusError&) {
    return false;  // it answered, unhealthy; unreachable still throws
  }
}

}  // namespace pc
