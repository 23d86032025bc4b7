#include <cstdio>
#include <ctime>

#include "common/error.hpp"
#include "prefect/types.hpp"

namespace pc {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad_field(std::string_view object, std::string_view field,
                            std::string_view expected) {
  throw api_error("unexpected Prefect API response: " + std::string(object) + "." +
                      std::string(field) + " is not " + std::string(expected),
                  Hint::kApiAnswer);
}

void require_object(const json& j, std::string_view object) {
  if (!j.is_object()) {
    throw api_error(
        "unexpected Prefect API response: " + std::string(object) + " is not a JSON object",
        Hint::kApiAnswer);
  }
}

// A string field; "" when missing or null. Numbers are accepted as text.
std::string str(const json& j, const char* field, std::string_view object) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return {};
  }
  if (it->is_string()) {
    return it->get<std::string>();
  }
  if (it->is_number()) {
    return it->dump();
  }
  bad_field(object, field, "a string");
}

std::string required_id(const json& j, std::string_view object) {
  std::string id = str(j, "id", object);
  if (id.empty()) {
    bad_field(object, "id", "present");
  }
  return id;
}

bool boolean(const json& j, const char* field, std::string_view object) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return false;
  }
  if (!it->is_boolean()) {
    bad_field(object, field, "a boolean");
  }
  return it->get<bool>();
}

json object_or_empty(const json& j, const char* field, std::string_view object) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return json::object();
  }
  if (!it->is_object()) {
    bad_field(object, field, "an object");
  }
  return *it;
}

std::optional<int> optional_int(const json& j, const char* field, std::string_view object) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return std::nullopt;
  }
  if (!it->is_number_integer()) {
    bad_field(object, field, "an integer");
  }
  return it->get<int>();
}

StateType state_type_field(const json& j, const char* field, std::string_view object) {
  auto type = parse_state_type(str(j, field, object));
  if (!type) {
    bad_field(object, field, "a known state type");
  }
  return *type;
}

}  // namespace

std::optional<StateType> FlowRun::current_type() const {
  if (state) {
    return state->type;
  }
  return state_type;
}

WorkPool decode_work_pool(const json& j) {
  require_object(j, "work pool");
  WorkPool pool;
  pool.id = required_id(j, "work pool");
  pool.name = str(j, "name", "work pool");
  pool.type = str(j, "type", "work pool");
  pool.status = str(j, "status", "work pool");
  pool.is_paused = boolean(j, "is_paused", "work pool");
  pool.base_job_template = object_or_empty(j, "base_job_template", "work pool");
  pool.concurrency_limit = optional_int(j, "concurrency_limit", "work pool");
  pool.default_queue_id = str(j, "default_queue_id", "work pool");
  return pool;
}

Deployment decode_deployment(const json& j) {
  require_object(j, "deployment");
  Deployment d;
  d.id = required_id(j, "deployment");
  d.name = str(j, "name", "deployment");
  d.flow_id = str(j, "flow_id", "deployment");
  d.work_pool_name = str(j, "work_pool_name", "deployment");
  d.work_queue_name = str(j, "work_queue_name", "deployment");
  d.paused = boolean(j, "paused", "deployment");
  d.job_variables = object_or_empty(j, "job_variables", "deployment");
  d.parameters = object_or_empty(j, "parameters", "deployment");
  return d;
}

State decode_state(const json& j) {
  require_object(j, "state");
  State s;
  s.type = state_type_field(j, "type", "state");
  s.name = str(j, "name", "state");
  s.message = str(j, "message", "state");
  s.timestamp = str(j, "timestamp", "state");
  s.state_details = object_or_empty(j, "state_details", "state");
  return s;
}

FlowRun decode_flow_run(const json& j) {
  require_object(j, "flow run");
  FlowRun r;
  r.id = required_id(j, "flow run");
  r.name = str(j, "name", "flow run");
  r.flow_id = str(j, "flow_id", "flow run");
  r.deployment_id = str(j, "deployment_id", "flow run");
  r.work_queue_name = str(j, "work_queue_name", "flow run");
  r.work_queue_id = str(j, "work_queue_id", "flow run");
  r.work_pool_name = str(j, "work_pool_name", "flow run");
  if (auto it = j.find("state"); it != j.end() && !it->is_null()) {
    r.state = decode_state(*it);
  }
  if (auto t = str(j, "state_type", "flow run"); !t.empty()) {
    r.state_type = parse_state_type(t);
  }
  r.parameters = object_or_empty(j, "parameters", "flow run");
  r.job_variables = object_or_empty(j, "job_variables", "flow run");
  r.infrastructure_pid = str(j, "infrastructure_pid", "flow run");
  r.labels = object_or_empty(j, "labels", "flow run");
  r.expected_start_time = str(j, "expected_start_time", "flow run");
  r.start_time = str(j, "start_time", "flow run");
  r.end_time = str(j, "end_time", "flow run");
  r.run_count = optional_int(j, "run_count", "flow run").value_or(0);
  if (auto it = j.find("tags"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      bad_field("flow run", "tags", "an array");
    }
    for (const auto& tag : *it) {
      if (!tag.is_string()) {
        bad_field("flow run", "tags", "an array of strings");
      }
      r.tags.push_back(tag.get<std::string>());
    }
  }
  return r;
}

WorkerFlowRun decode_worker_flow_run(const json& j) {
  require_object(j, "scheduled flow run");
  WorkerFlowRun w;
  w.work_pool_id = str(j, "work_pool_id", "scheduled flow run");
  w.work_queue_id = str(j, "work_queue_id", "scheduled flow run");
  auto it = j.find("flow_run");
  if (it == j.end()) {
    bad_field("scheduled flow run", "flow_run", "present");
  }
  w.flow_run = decode_flow_run(*it);
  return w;
}

Worker decode_worker(const json& j) {
  require_object(j, "worker");
  Worker w;
  w.name = str(j, "name", "worker");
  w.status = str(j, "status", "worker");
  w.last_heartbeat_time = str(j, "last_heartbeat_time", "worker");
  w.heartbeat_interval_seconds =
      optional_int(j, "heartbeat_interval_seconds", "worker").value_or(0);
  return w;
}

SetStateResult decode_set_state_result(const json& j) {
  require_object(j, "orchestration result");
  SetStateResult result;
  std::string status = str(j, "status", "orchestration result");
  if (status == "ACCEPT") {
    result.status = SetStateStatus::kAccept;
  } else if (status == "REJECT") {
    result.status = SetStateStatus::kReject;
  } else if (status == "ABORT") {
    result.status = SetStateStatus::kAbort;
  } else if (status == "WAIT") {
    result.status = SetStateStatus::kWait;
  } else {
    bad_field("orchestration result", "status", "ACCEPT, REJECT, ABORT or WAIT");
  }
  if (auto it = j.find("state"); it != j.end() && !it->is_null()) {
    result.state = decode_state(*it);
  }
  json details = object_or_empty(j, "details", "orchestration result");
  result.reason = str(details, "reason", "orchestration result.details");
  if (auto it = details.find("delay_seconds"); it != details.end() && it->is_number()) {
    result.delay_seconds = it->get<double>();
  }
  return result;
}

std::string_view to_string(SetStateStatus status) {
  switch (status) {
    case SetStateStatus::kAccept:
      return "ACCEPT";
    case SetStateStatus::kReject:
      return "REJECT";
    case SetStateStatus::kAbort:
      return "ABORT";
    case SetStateStatus::kWait:
      return "WAIT";
  }
  return "UNKNOWN";
}

std::string format_iso8601(std::chrono::system_clock::time_point t) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  long fraction = static_cast<long>(micros % 1000000);
  if (fraction < 0) {
    fraction += 1000000;
    --seconds;
  }
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
  return buffer;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  char sep = 0;
  int consumed = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &year, &month, &day, &sep, &hour,
                  &minute, &second, &consumed) != 7 ||
      (sep != 'T' && sep != ' ' && sep != 't')) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  long micros = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (rest.front() - '0');
        ++digits;
      }
      rest.remove_prefix(1);
    }
    while (digits++ < 6) {
      micros *= 10;
    }
  }
  long offset_seconds = 0;
  if (rest == "Z" || rest == "z" || rest.empty()) {
    offset_seconds = 0;
  } else if ((rest.front() == '+' || rest.front() == '-') && rest.size() >= 3) {
    int sign = rest.front() == '-' ? -1 : 1;
    int oh = 0, om = 0;
    std::string offset(rest.substr(1));
    if (std::sscanf(offset.c_str(), "%2d:%2d", &oh, &om) < 1 &&
        std::sscanf(offset.c_str(), "%2d%2d", &oh, &om) < 1) {
      return std::nullopt;
    }
    offset_seconds = static_cast<long>(sign) * (oh * 3600L + om * 60L);
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t epoch = timegm(&tm);
  return std::chrono::system_clock::from_time_t(epoch - offset_seconds) +
         std::chrono::microseconds(micros);
}

std::chrono::seconds Worker::heartbeat_interval() const {
  return std::chrono::seconds(heartbeat_interval_seconds > 0 ? heartbeat_interval_seconds : 30);
}

std::optional<std::chrono::system_clock::duration> Worker::since_heartbeat(
    std::chrono::system_clock::time_point now) const {
  auto last = parse_iso8601(last_heartbeat_time);
  if (!last) {
    return std::nullopt;
  }
  return now - *last;
}

}  // namespace pc
