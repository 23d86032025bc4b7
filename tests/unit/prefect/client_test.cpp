#include "prefect/client.hpp"

#include <catch2/catch.hpp>

#include "http/fake_transport.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::FakeSleeper;
using pc::testing::FakeTransport;

namespace {

struct Fixture {
  FakeTransport transport;
  FakeSleeper sleeper;
  ApiClient api{transport, ApiOptions{"http://h/api", "", "", std::chrono::seconds(5)},
                Logger::null(), RetryPolicy{}, sleeper};
  PrefectClient client{api};
  const HttpRequest& req(std::size_t i = 0) const { return transport.requests.at(i); }
  json body(std::size_t i = 0) const { return json::parse(req(i).body); }
};

const char* kPool =
    R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"PAUSED"})";

}  // namespace

TEST_CASE("PrefectClient work pool calls", "[prefect]") {
  Fixture f;
  f.transport.reply(404, R"({"detail":"Work pool not found."})").reply(200, kPool);
  CHECK_FALSE(f.client.read_work_pool("a b"));
  CHECK(f.req().url == "http://h/api/work_pools/a%20b");
  CHECK(f.client.read_work_pool("etl")->is_paused);

  f.transport.reply(204);
  f.client.set_work_pool_paused("etl", false);
  CHECK(f.req(2).method == "PATCH");
  CHECK(f.req(2).body == R"({"is_paused":false})");

  f.transport.reply(404);
  CHECK_THROWS_WITH(f.client.set_work_pool_paused("gone", true),
                    "work pool \"gone\" not found at http://h/api");

  f.transport.reply(409).reply(200, kPool);
  CHECK(f.client.create_work_pool("etl", "process", json::object()).id == "p1");
  CHECK(f.body(4) == json{{"name", "etl"}, {"type", "process"}});
  CHECK(f.req(5).url == "http://h/api/work_pools/etl");
}

TEST_CASE("PrefectClient deployment by name encodes each segment", "[prefect]") {
  Fixture f;
  f.transport.reply(200, R"({"id":"d1","name":"my deployment","work_pool_name":"etl"})").reply(404);
  auto d = f.client.read_deployment_by_name("hello world", "my deployment");
  REQUIRE(d);
  CHECK(d->id == "d1");
  CHECK(f.req().url == "http://h/api/deployments/name/hello%20world/my%20deployment");
  CHECK_FALSE(f.client.read_deployment_by_name("a/b", "c"));
  CHECK(f.req(1).url == "http://h/api/deployments/name/a%2Fb/c");
}

TEST_CASE("PrefectClient flow run filter and count bodies", "[prefect]") {
  Fixture f;
  f.transport.reply(200, "[]").reply(200, "4");
  FlowRunFilter filter;
  filter.work_pool_names = {"etl"};
  filter.state_types = {StateType::kPending, StateType::kRunning};
  CHECK(f.client.read_flow_runs(filter).empty());
  CHECK(f.body() == json::parse(R"({"flow_runs":{"state":{"type":{"any_":["PENDING","RUNNING"]}}},
      "work_pools":{"name":{"any_":["etl"]}},"limit":200,"offset":0,"sort":"EXPECTED_START_TIME_ASC"})"));
  CHECK(f.client.count_flow_runs(filter) == 4);
  CHECK(f.req(1).url == "http://h/api/flow_runs/count");
  CHECK_FALSE(f.body(1).contains("limit"));
}

TEST_CASE("PrefectClient set_state carries the transition id", "[prefect]") {
  Fixture f;
  f.transport.reply(201, R"({"status":"ACCEPT","details":{"type":"accept_details"},
      "state":{"type":"PENDING","name":"Pending"}})");
  StateCreate pending;
  pending.type = StateType::kPending;
  auto result = f.client.set_flow_run_state("r1", pending, false, "t-1");
  CHECK(result.status == SetStateStatus::kAccept);
  CHECK(f.req().url == "http://h/api/flow_runs/r1/set_state");
  CHECK(f.body() == json::parse(R"({"state":{"type":"PENDING",
      "state_details":{"flow_run_id":"r1","transition_id":"t-1"}},"force":false})"));
}

TEST_CASE("PrefectClient scheduled runs, heartbeat, create run", "[prefect]") {
  Fixture f;
  f.transport.reply(200, "[]").reply(404).reply(204).reply(
      201, R"({"id":"r9","name":"x","state":{"type":"SCHEDULED"}})");
  auto when = *parse_iso8601("2026-01-01T00:00:00Z");
  CHECK(f.client.get_scheduled_flow_runs("etl", {"q1"}, when).empty());
  CHECK(f.body() ==
        json::parse(
            R"({"work_queue_names":["q1"],"scheduled_before":"2026-01-01T00:00:00.000000Z"})"));
  CHECK(f.client.get_scheduled_flow_runs("etl", {}, when).empty());  // 404 = none
  f.client.send_worker_heartbeat("etl", "w1", std::chrono::seconds(30));
  CHECK(f.body(2) == json::parse(R"({"name":"w1","heartbeat_interval_seconds":30})"));
  CHECK(f.client.create_flow_run_from_deployment("d1").id == "r9");
  CHECK(f.req(3).url == "http://h/api/deployments/d1/create_flow_run");
}

TEST_CASE("new_uuid4 is a version-4 UUID", "[prefect]") {
  auto a = new_uuid4();
  auto b = new_uuid4();
  CHECK(a.size() == 36);
  CHECK(a[14] == '4');
  CHECK(a != b);
}
