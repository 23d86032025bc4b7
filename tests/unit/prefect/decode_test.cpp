#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "prefect/types.hpp"

using namespace pc;
using nlohmann::json;

namespace {

// Responses captured from a real Prefect 3.8.8 server (see data/).
json load(const std::string& name) {
  auto dir = std::filesystem::path(__FILE__).parent_path() / "data";
  std::ifstream in(dir / name);
  REQUIRE(in.good());
  return json::parse(in);
}

std::string decode_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kApi);
    return e.message();  // the fix of each class: tests/unit/common/hint_test.cpp
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("decode real work pool", "[prefect]") {
  auto pool = decode_work_pool(load("work_pool.json"));
  CHECK(pool.name == "smoke");
  CHECK(pool.type == "process");
  CHECK(pool.is_paused);
  CHECK(pool.status == "PAUSED");
  CHECK(pool.base_job_template.contains("job_configuration"));
  CHECK(pool.base_job_template["variables"]["properties"].contains("command"));
  CHECK_FALSE(pool.concurrency_limit);
  CHECK_FALSE(pool.default_queue_id.empty());
}

TEST_CASE("decode real deployment", "[prefect]") {
  auto d = decode_deployment(load("deployment.json"));
  CHECK(d.name == "dep");
  CHECK(d.work_pool_name == "smoke");
  CHECK(d.work_queue_name == "default");
  CHECK_FALSE(d.flow_id.empty());
  CHECK(d.job_variables.is_object());
}

TEST_CASE("decode real flow runs", "[prefect]") {
  auto done = decode_flow_run(load("flow_run.json"));
  REQUIRE(done.state);
  CHECK(done.state->type == StateType::kCompleted);
  CHECK(done.current_type() == StateType::kCompleted);
  CHECK_FALSE(done.start_time.empty());

  auto created = decode_flow_run(load("created_flow_run.json"));
  REQUIRE(created.state);
  CHECK(created.state->type == StateType::kScheduled);
  CHECK(created.infrastructure_pid.empty());
  CHECK(parse_iso8601(created.expected_start_time).has_value());

  auto scheduled = load("scheduled_flow_runs.json");
  REQUIRE(scheduled.size() == 1);
  auto w = decode_worker_flow_run(scheduled[0]);
  CHECK_FALSE(w.work_queue_id.empty());
  CHECK_FALSE(w.flow_run.state);  // get_scheduled_flow_runs sends "state": null
  CHECK(w.flow_run.current_type() == StateType::kScheduled);
}

TEST_CASE("decode real orchestration results", "[prefect]") {
  auto accept = decode_set_state_result(load("set_state_accept.json"));
  CHECK(accept.status == SetStateStatus::kAccept);
  REQUIRE(accept.state);
  CHECK(accept.state->type == StateType::kPending);
  CHECK(accept.state->state_details["transition_id"] == "9f3c2b1e-0000-4000-8000-000000000001");

  auto abort = decode_set_state_result(load("set_state_abort.json"));
  CHECK(abort.status == SetStateStatus::kAbort);
  CHECK(abort.reason == "This run is in a PENDING state and cannot transition to a PENDING state.");

  auto wait = decode_set_state_result(json::parse(
      R"({"status":"WAIT","state":null,"details":{"type":"wait_details","delay_seconds":5,"reason":"later"}})"));
  CHECK(wait.status == SetStateStatus::kWait);
  CHECK(wait.delay_seconds == 5.0);
  CHECK_FALSE(wait.state);
}

TEST_CASE("decode real workers", "[prefect]") {
  auto list = load("workers.json");
  REQUIRE(list.size() >= 1);
  auto w = decode_worker(list[0]);
  CHECK_FALSE(w.name.empty());
  CHECK(w.heartbeat_interval_seconds > 0);
}

TEST_CASE("decoding rejects malformed objects with a clean error", "[prefect]") {
  CHECK(decode_error([] { decode_work_pool(json::array()); }) ==
        "unexpected Prefect API response: work pool is not a JSON object");
  CHECK(decode_error([] {
          decode_work_pool(json{{"name", "x"}});
        }) == "unexpected Prefect API response: work pool.id is not present");
  CHECK(decode_error([] {
          decode_work_pool(json{{"id", "1"}, {"is_paused", "yes"}});
        }) == "unexpected Prefect API response: work pool.is_paused is not a boolean");
  CHECK(decode_error([] {
          decode_state(json{{"type", "EXPLODED"}});
        }) == "unexpected Prefect API response: state.type is not a known state type");
  CHECK(decode_error([] {
          decode_set_state_result(json{{"status", "MAYBE"}});
        }) ==
        "unexpected Prefect API response: orchestration result.status is not ACCEPT, REJECT, "
        "ABORT or WAIT");
  CHECK(decode_error([] {
          decode_worker_flow_run(json{{"work_pool_id", "x"}});
        }) == "unexpected Prefect API response: scheduled flow run.flow_run is not present");
  CHECK(decode_error([] {
          decode_flow_run(json{{"id", "1"}, {"tags", 5}, {"name", json::array()}});
        }) == "unexpected Prefect API response: flow run.name is not a string");
}

TEST_CASE("ISO 8601 round trip and the forms Prefect sends", "[prefect]") {
  auto t = parse_iso8601("2026-08-21T16:00:10.123456Z");
  REQUIRE(t);
  CHECK(format_iso8601(*t) == "2026-08-21T16:00:10.123456Z");
  CHECK(parse_iso8601("2026-08-21 16:00:10.123456+00:00") == t);
  CHECK(parse_iso8601("2026-08-21T18:00:10.123456+02:00") == t);
  CHECK(parse_iso8601("2026-08-21T16:00:10Z") == *t - std::chrono::microseconds(123456));
  CHECK_FALSE(parse_iso8601("yesterday"));
  CHECK_FALSE(parse_iso8601("2026-08-21T16:00:10 PST"));
}

TEST_CASE("decode more real Prefect 3.8.8 answers", "[prefect]") {
  SECTION("a new pool has an empty base job template") {
    auto pool = decode_work_pool(load("work_pool_empty_template.json"));
    CHECK(pool.name == "verify-pool");
    CHECK(pool.base_job_template == json::object());
    CHECK(pool.status == "PAUSED");
  }
  SECTION("create_flow_run with an empty body: SCHEDULED, due now") {
    auto run = decode_flow_run(load("created_flow_run_empty_body.json"));
    REQUIRE(run.state);
    CHECK(run.state->type == StateType::kScheduled);
    CHECK(run.state->name == "Scheduled");
    CHECK(run.state->state_details["scheduled_time"] == run.expected_start_time);
    CHECK(run.work_pool_name == "verify-pool");
    CHECK(run.work_queue_name == "default");
    CHECK(run.run_count == 0);
    CHECK(run.tags.empty());
    CHECK(run.start_time.empty());
  }
  SECTION("POST /flow_runs/filter answers a list of runs with a loaded state") {
    auto list = load("flow_runs_filter.json");
    REQUIRE(list.is_array());
    REQUIRE(list.size() == 1);
    auto run = decode_flow_run(list[0]);
    CHECK(run.id == "e204f11d-7370-405b-bda4-386ee1564d11");
    REQUIRE(run.state);
    CHECK(run.state->type == StateType::kScheduled);
  }
  SECTION("set_state: REJECT for a repeated transition id, CRASHED accepted") {
    auto dup = decode_set_state_result(load("set_state_reject_duplicate.json"));
    CHECK(dup.status == SetStateStatus::kReject);
    CHECK(dup.reason == "This run has already made this state transition.");
    REQUIRE(dup.state);
    CHECK(dup.state->type == StateType::kPending);
    CHECK(dup.state->state_details["transition_id"] == "b9af5683-ac26-422b-9225-8c9237de113d");
    auto crashed = decode_set_state_result(load("set_state_crashed.json"));
    CHECK(crashed.status == SetStateStatus::kAccept);
    REQUIRE(crashed.state);
    CHECK(crashed.state->type == StateType::kCrashed);
    CHECK(crashed.state->message == "boom");
    CHECK(parse_iso8601(crashed.state->timestamp).has_value());
  }
  SECTION("workers: status recomputed by the server") {
    auto list = load("workers_online_offline.json");
    REQUIRE(list.size() == 2);
    auto online = decode_worker(list[0]);
    auto offline = decode_worker(list[1]);
    CHECK(online.status == "ONLINE");
    CHECK(online.heartbeat_interval_seconds == 15);
    CHECK(offline.status == "OFFLINE");
    CHECK(parse_iso8601(offline.last_heartbeat_time).has_value());
  }
}

TEST_CASE("decoding tolerates nulls and missing fields", "[prefect]") {
  auto run = decode_flow_run(json::parse(R"({"id":"r","name":null,"state":null,"tags":null,
      "parameters":null,"job_variables":null,"infrastructure_pid":null,"run_count":null,
      "unknown_field":{"x":1}})"));
  CHECK(run.name.empty());
  CHECK_FALSE(run.state);
  CHECK_FALSE(run.current_type());
  CHECK(run.parameters == json::object());
  CHECK(run.tags.empty());
  auto pool = decode_work_pool(json::parse(R"({"id":"p","status":null,"concurrency_limit":3})"));
  CHECK(pool.status.empty());
  CHECK(pool.concurrency_limit == 3);
  CHECK(decode_error([] { decode_flow_run(json::parse(R"({"id":"r","tags":"a,b"})")); }) ==
        "unexpected Prefect API response: flow run.tags is not an array");
  CHECK(decode_error([] {
          decode_work_pool(json::parse(R"({"id":"p","concurrency_limit":"3"})"));
        }) == "unexpected Prefect API response: work pool.concurrency_limit is not an integer");
}

TEST_CASE("Worker: heartbeat interval and age", "[prefect]") {
  Worker w;
  CHECK(w.heartbeat_interval() == std::chrono::seconds(30));  // Prefect's default
  CHECK_FALSE(w.since_heartbeat(std::chrono::system_clock::now()));
  w.heartbeat_interval_seconds = 2;
  w.last_heartbeat_time = "2026-12-01T00:00:00Z";
  CHECK(w.heartbeat_interval() == std::chrono::seconds(2));
  auto then = *parse_iso8601("2026-12-01T00:00:07Z");
  CHECK(w.since_heartbeat(then) == std::chrono::seconds(7));
}
