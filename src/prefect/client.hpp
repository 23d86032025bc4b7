#pragma once
// Typed Prefect REST calls (paths relative to PREFECT_API_URL; see
// ../shared/docs/prefect-protocol.md). Every call throws pc::Error(kApi) on
// failures it does not name; "not found" is an empty optional where noted.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/api_client.hpp"
#include "prefect/types.hpp"

namespace pc {

struct FlowRunFilter {
  std::vector<std::string> work_pool_names;
  std::vector<StateType> state_types;
  std::vector<std::string> ids;
  int limit = 200;
  int offset = 0;
  std::string sort = "EXPECTED_START_TIME_ASC";
};

struct StateCreate {
  StateType type = StateType::kPending;
  std::string name;     // empty = the server's default for the type
  std::string message;  // empty = none
  nlohmann::json state_details = nlohmann::json::object();
};

// One result of a batch: the value, or the exception the single call would
// have thrown.
template <typename T>
struct Outcome {
  std::optional<T> value;
  std::exception_ptr error;
  // The value, or rethrows the error.
  T& get() {
    if (error) {
      std::rethrow_exception(error);
    }
    return *value;
  }
};

// A state proposal of set_flow_run_states().
struct StateProposal {
  std::string flow_run_id;
  StateCreate state;
  bool force = false;
  std::string transition_id;
};

// Whether `state` is the one `proposal` set: of its type, with its
// transition_id in the details (an applied proposal whose answer was lost,
// or a retried one the server rejected as a duplicate).
bool applied(const StateProposal& proposal, const State& state);

// A PATCH of patch_flow_runs(): the run's fields, or its labels.
struct FlowRunPatch {
  std::string flow_run_id;
  nlohmann::json body;
  bool labels = false;  // PATCH /flow_runs/{id}/labels instead of /flow_runs/{id}
};

class PrefectClient {
 public:
  explicit PrefectClient(ApiClient& api) : api_(api) {}

  // --- work pools
  std::optional<WorkPool> read_work_pool(const std::string& name);
  // 409 (created meanwhile by someone else) -> re-read.
  WorkPool create_work_pool(const std::string& name, const std::string& type,
                            const nlohmann::json& base_job_template);
  // PATCH /work_pools/{name} {"is_paused": b}; 404 -> Error.
  void set_work_pool_paused(const std::string& name, bool paused,
                            const RequestOptions& options = {});
  // POST /work_pools/{pool}/workers/filter; 404 -> empty.
  std::vector<Worker> read_workers(const std::string& pool);

  // --- deployments and flows
  // GET /deployments/name/{flow}/{deployment}, each segment percent-encoded
  // ("my flow" -> my%20flow). 404 -> nullopt. Prefect forbids '/' in flow
  // and deployment names, so "a/b" cannot exist (the server answers 404).
  std::optional<Deployment> read_deployment_by_name(const std::string& flow,
                                                    const std::string& deployment);
  // GET /deployments/{id}; 404 -> nullopt (the worker cancels such runs).
  std::optional<Deployment> read_deployment(const std::string& id);
  // POST /deployments/{id}/create_flow_run. `body` is a DeploymentFlowRunCreate
  // (unknown fields give 422); null or {} sends {"state":{"type":"SCHEDULED"}}:
  // a run due now (the server's default too). 404 -> Error.
  FlowRun create_flow_run_from_deployment(const std::string& deployment_id,
                                          const nlohmann::json& body = {});
  nlohmann::json read_flow(const std::string& id);

  // --- flow runs
  std::vector<FlowRun> read_flow_runs(const FlowRunFilter& filter);
  // The runs of these ids that exist, by id: read_flow_runs a page of the
  // filter at a time (ids are never more than a worker's or a cycle's runs).
  std::map<std::string, FlowRun> read_flow_runs_by_id(const std::vector<std::string>& ids);
  std::int64_t count_flow_runs(const FlowRunFilter& filter);
  // GET /flow_runs/{id}; 404 -> nullopt.
  std::optional<FlowRun> read_flow_run(const std::string& id);
  // POST /flow_runs/{id}/set_state {"state": {...}, "force": b}.
  // `transition_id` goes into state_details; a retried POST reuses it, so the
  // server rejects a duplicate instead of applying it twice. That REJECT
  // (current state carries our transition_id) is reported as kAccept: our
  // earlier attempt was applied. 404 -> Error.
  SetStateResult set_flow_run_state(const std::string& flow_run_id, const StateCreate& state,
                                    bool force, const std::string& transition_id);
  // set_flow_run_state for several runs, sent at once (ApiClient::request_all).
  std::vector<Outcome<SetStateResult>> set_flow_run_states(
      const std::vector<StateProposal>& proposals);
  void update_flow_run(const std::string& id, const nlohmann::json& patch,
                       const RequestOptions& options = {});
  // update_flow_run / update_flow_run_labels for several runs, sent at once;
  // each its error, or null.
  std::vector<std::exception_ptr> patch_flow_runs(const std::vector<FlowRunPatch>& patches,
                                                  const RequestOptions& options = {});
  // Calls started without waiting (ApiClient::start): one of
  // patch_flow_runs' updates; the worker's heartbeat (POST
  // /work_pools/{pool}/workers/heartbeat; 404 -> Error); the DELETE of a
  // worker row (a missing one is fine). poll_started() returns those that
  // ended within `wait`, each with its error, or null.
  ApiClient::CallId start_patch(const FlowRunPatch& patch, const RequestOptions& options = {});
  ApiClient::CallId start_heartbeat(const std::string& pool, const std::string& worker_name,
                                    std::chrono::seconds interval,
                                    const RequestOptions& options = {});
  ApiClient::CallId start_delete_worker(const std::string& pool, const std::string& name,
                                        const RequestOptions& options = {});
  //
  // A call started with start_call() or start_look_up() is not returned:
  // poll_started() hands its answer to its handler (which may start more
  // calls). Every answer of a poll reaches its handler; when one threw, the
  // first exception is rethrown after the last handler.
  std::vector<std::pair<ApiClient::CallId, std::exception_ptr>> poll_started(
      std::chrono::milliseconds wait);
  // Calls started and not yet handed to their handler or returned.
  bool in_flight() const { return !answered_.empty(); }
  // GET /flow_run_states/?flow_run_id={id}: the run's state history, oldest
  // first (every supported server has it).
  std::vector<State> read_flow_run_states(const std::string& flow_run_id);
  // PATCH /flow_runs/{id}/labels with the labels object (merged server-side).
  void update_flow_run_labels(const std::string& id, const nlohmann::json& labels,
                              const RequestOptions& options = {});

  // --- worker
  // 404 (unknown pool or queue) -> empty, as Prefect's worker does.
  std::vector<WorkerFlowRun> get_scheduled_flow_runs(
      const std::string& pool, const std::vector<std::string>& queues,
      std::chrono::system_clock::time_point scheduled_before,
      std::optional<int> limit = std::nullopt);

  // --- variables, blocks, server
  // The variable's `value`; 404 -> nullopt.
  std::optional<nlohmann::json> read_variable_by_name(const std::string& name);
  // The whole block document (its `data` holds the values, secrets included:
  // never log it); 404 (unknown type or name) -> nullopt.
  std::optional<nlohmann::json> read_block_document(const std::string& block_type_slug,
                                                    const std::string& name);
  // GET /admin/version: the Prefect release ("3.8.8"), not /version's API
  // schema version.
  // GET /block_documents/{id}?include_secrets=true (a {"$ref": ...} reference).
  std::optional<nlohmann::json> read_block_document_by_id(const std::string& id);
  std::string read_server_version();

  // The reads a worker needs before it claims a batch, sent at once (one
  // round trip): the runs again by id (as read_flow_runs_by_id, at most one
  // page of ids), deployments and flows by id (as read_deployment and
  // read_flow), and the server's version. Each its value or its error.
  struct Lookups {
    std::vector<std::string> flow_run_ids;
    std::vector<std::string> deployment_ids;
    std::vector<std::string> flow_ids;
    bool server_version = false;
  };
  struct LookupResults {
    std::optional<Outcome<std::map<std::string, FlowRun>>> flow_runs;
    std::map<std::string, Outcome<std::optional<Deployment>>> deployments;
    std::map<std::string, Outcome<nlohmann::json>> flows;
    std::optional<Outcome<std::string>> server_version;
  };
  LookupResults look_up(const Lookups& wanted);
  // --- reads sent together
  // A call as a value (a read, or a proposal: proposal_call): its
  // request, and the decoding of its answer exactly as the blocking method
  // of the same name does it. read_together() sends several in one round
  // (ApiClient::request_all), each with its retries; each comes back with
  // its value or the error its blocking method throws.
  template <typename T>
  struct Call {
    ApiClient::Call call;
    std::function<T(const ApiResponse&)> decode;
  };
  static Call<std::optional<WorkPool>> work_pool_read(const std::string& name);
  static Call<std::vector<Worker>> workers_read(const std::string& pool);
  static Call<std::vector<FlowRun>> flow_runs_read(const FlowRunFilter& filter);
  // read_flow_run_states() as a Call (the same order).
  static Call<std::vector<State>> flow_run_states_read(const std::string& flow_run_id);
  static Call<std::int64_t> count_read(const FlowRunFilter& filter);
  static Call<std::vector<WorkerFlowRun>> scheduled_runs_read(
      const std::string& pool, const std::vector<std::string>& queues,
      std::chrono::system_clock::time_point scheduled_before,
      std::optional<int> limit = std::nullopt);
  // A read alone: its blocking method.
  template <typename T>
  T read(const Call<T>& one, const RequestOptions& options = {}) {
    return one.decode(api_.request(one.call.method, one.call.path, one.call.body, options));
  }
  template <typename... T>
  std::tuple<Outcome<T>...> read_together(const Call<T>&... reads) {
    return read_together(RequestOptions{}, reads...);
  }
  // read_together with `options` (a deadline, no retries) for every read.
  template <typename... T>
  std::tuple<Outcome<T>...> read_together(const RequestOptions& options, const Call<T>&... reads) {
    std::vector<ApiClient::Call> calls{reads.call...};
    auto results = api_.request_all(calls, lock_free_if_reads(calls, options));
    return decoded_all(results, std::index_sequence_for<T...>{}, reads...);
  }
  // A Call started without waiting: `done` gets its value or the error its
  // blocking method would throw, from the poll_started() that sees it end.
  template <typename T>
  ApiClient::CallId start_call(const Call<T>& read,
                               std::type_identity_t<std::function<void(Outcome<T>)>> done) {
    return start_answered(
        read.call, {},
        [read, done = std::move(done)](ApiClient::CallId, const ApiClient::Result& r) {
          done(decoded(read, r));
        });
  }
  // request_all()'s twin without waiting: the calls started together; `done`
  // gets their results, in the calls' order, from the poll_started() that
  // sees the last one end (at once when there are none).
  void start_together(const std::vector<ApiClient::Call>& calls,
                      std::function<void(const std::vector<ApiClient::Result>&)> done);
  // Reads of one kind started together; `done` gets each one's value or
  // error, in their order.
  template <typename T>
  void start_all(const std::vector<Call<T>>& reads,
                 std::type_identity_t<std::function<void(std::vector<Outcome<T>>)>> done) {
    std::vector<ApiClient::Call> calls;
    calls.reserve(reads.size());
    for (const auto& read : reads) {
      calls.push_back(read.call);
    }
    start_together(calls,
                   [reads, done = std::move(done)](const std::vector<ApiClient::Result>& results) {
                     std::vector<Outcome<T>> outcomes;
                     outcomes.reserve(results.size());
                     for (std::size_t i = 0; i < results.size(); ++i) {
                       outcomes.push_back(decoded(reads[i], results[i]));
                     }
                     done(std::move(outcomes));
                   });
  }
  // set_flow_run_state's proposal as a Call (its answer decoded the same way).
  static Call<SetStateResult> proposal_call(const StateProposal& proposal);
  // look_up()'s reads started without waiting; `done` gets them all when the
  // last one has ended (at once when nothing is wanted).
  void start_look_up(const Lookups& wanted, std::function<void(LookupResults)> done);

  // --- logs and events (client_events.cpp)
  // POST /logs/ with a JSON list of log records (events.hpp: run_log_record);
  // POST /events with a JSON list of events (201/204, nothing to read).
  static ApiClient::Call logs_call(nlohmann::json records);
  static ApiClient::Call events_call(nlohmann::json events);
  // A write started without waiting: `done` gets its error (any answer but
  // 2xx, 404 included, is an HttpStatusError), or null, from the poll_started() that sees it end;
  // poll_started() does not return it.
  void start_write(const ApiClient::Call& call, const RequestOptions& options,
                   std::function<void(std::exception_ptr)> done);
  // The same write, waited for; throws pc::Error(kApi) as start_write reports.
  void write(const ApiClient::Call& call, const RequestOptions& options);
  // GET /admin/version as a Call (read_server_version's decoding).
  static Call<std::string> server_version_read();

  // GET /health without retries: true when it answers 200 `true`, false for
  // any other answer; throws pc::Error(kApi) when the server is unreachable.
  bool health();

 private:
  // Whether Prefect's server only reads to answer `call`: a GET, or a POST
  // to one of its read routes (.../filter, /flow_runs/count). On SQLite,
  // whose write-ahead log lets reads go beside a write, such a call is
  // never answered 503 "database is locked".
  static bool reads_only(const ApiClient::Call& call);
  // `options`, marked takes_no_lock when every call only reads: after a
  // busy answer such calls still go together, and beside the writes.
  static RequestOptions lock_free_if_reads(std::span<const ApiClient::Call> calls,
                                           RequestOptions options);
  template <typename T>
  static Outcome<T> decoded(const Call<T>& read, const ApiClient::Result& result) {
    Outcome<T> outcome;
    try {
      outcome.value = read.decode(result.get());
    } catch (...) {
      outcome.error = std::current_exception();
    }
    return outcome;
  }
  template <typename... T, std::size_t... I>
  static std::tuple<Outcome<T>...> decoded_all(const std::vector<ApiClient::Result>& results,
                                               std::index_sequence<I...> /*each read's answer*/,
                                               const Call<T>&... reads) {
    return {decoded(reads, results[I])...};
  }

  // api_.start(call), its answer checked by `check` when poll_started() returns it.
  ApiClient::CallId start(const ApiClient::Call& call, const RequestOptions& options,
                          std::function<void(const ApiResponse&)> check);

  ApiClient& api_;
  // api_.start(call), its result handed to `answered` by poll_started().
  // Every started call is one of these; start()'s handler checks the
  // answer and keeps the call's end for poll_started() to return.
  using Answered = std::function<void(ApiClient::CallId, const ApiClient::Result&)>;
  ApiClient::CallId start_answered(const ApiClient::Call& call, const RequestOptions& options,
                                   Answered answered);
  // The lookups as calls, each with what fills its part of the results.
  using LookupPart =
      std::pair<ApiClient::Call, std::function<void(LookupResults&, const ApiClient::Result&)>>;
  static std::vector<LookupPart> lookup_parts(const Lookups& wanted);
  static std::vector<ApiClient::Call> calls_of(const std::vector<LookupPart>& parts);
  static LookupResults gathered(const std::vector<LookupPart>& parts,
                                const std::vector<ApiClient::Result>& results);
  std::map<ApiClient::CallId, Answered> answered_;
  // The checked calls that ended, each with its error or null, until
  // poll_started() returns them.
  std::vector<std::pair<ApiClient::CallId, std::exception_ptr>> ended_;
};

// The JSON body of a flow run filter (for /flow_runs/filter and /count).
nlohmann::json flow_run_filter_body(const FlowRunFilter& filter, bool paging);

// A random UUID4 string (transition ids).
std::string new_uuid4();

}  // namespace pc
