#pragma once
// Prefect API objects as prefect-cycle uses them, decoded from the server's
// JSON. Decoding tolerates missing and null optional fields and ignores
// unknown ones; a missing `id` or a wrong type throws pc::Error(kApi) naming
// the object and the field.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prefect/state_type.hpp"

namespace pc {

struct WorkPool {
  std::string id;
  std::string name;
  std::string type;
  std::string status;  // READY, NOT_READY, PAUSED (empty for agent pools)
  bool is_paused = false;
  nlohmann::json base_job_template = nlohmann::json::object();
  std::optional<int> concurrency_limit;
  std::string default_queue_id;
};

struct Deployment {
  std::string id;
  std::string name;
  std::string flow_id;
  std::string work_pool_name;
  std::string work_queue_name;
  bool paused = false;
  nlohmann::json job_variables = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
};

struct State {
  StateType type = StateType::kScheduled;
  std::string name;
  std::string message;
  std::string timestamp;
  nlohmann::json state_details = nlohmann::json::object();
};

struct FlowRun {
  std::string id;
  std::string name;
  std::string flow_id;
  std::string deployment_id;
  std::string work_queue_name;
  std::string work_queue_id;
  std::string work_pool_name;
  std::optional<State> state;
  std::optional<StateType> state_type;  // the run's flat state_type field
  nlohmann::json parameters = nlohmann::json::object();
  nlohmann::json job_variables = nlohmann::json::object();
  std::string infrastructure_pid;
  std::string expected_start_time;
  std::string start_time;
  std::string end_time;
  int run_count = 0;
  std::vector<std::string> tags;
  nlohmann::json labels = nlohmann::json::object();

  // The state type from `state`, else from the flat field.
  std::optional<StateType> current_type() const;
};

struct WorkerFlowRun {
  std::string work_pool_id;
  std::string work_queue_id;
  FlowRun flow_run;
};

struct Worker {
  std::string name;
  std::string status;
  std::string last_heartbeat_time;
  int heartbeat_interval_seconds = 0;

  // The row's interval, or Prefect's default (30 s) when it has none.
  std::chrono::seconds heartbeat_interval() const;
  // How long ago it last heartbeated; nullopt when it never did.
  std::optional<std::chrono::system_clock::duration> since_heartbeat(
      std::chrono::system_clock::time_point now) const;
};

enum class SetStateStatus { kAccept, kReject, kAbort, kWait };

struct SetStateResult {
  SetStateStatus status = SetStateStatus::kAbort;
  std::optional<State> state;
  std::string reason;
  double delay_seconds = 0;
};

WorkPool decode_work_pool(const nlohmann::json& j);
Deployment decode_deployment(const nlohmann::json& j);
State decode_state(const nlohmann::json& j);
FlowRun decode_flow_run(const nlohmann::json& j);
WorkerFlowRun decode_worker_flow_run(const nlohmann::json& j);
Worker decode_worker(const nlohmann::json& j);
SetStateResult decode_set_state_result(const nlohmann::json& j);

std::string_view to_string(SetStateStatus status);

// UTC, microseconds, "Z": 2026-11-24T12:00:00.123456Z
std::string format_iso8601(std::chrono::system_clock::time_point t);
// Accepts "Z", "+00:00"/"-05:30" offsets, fractional seconds, ' ' for 'T'.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace pc
