#include "prefect/client.hpp"

#include <catch2/catch.hpp>

#include "common/with_fix.hpp"
#include "prefect/fake_client.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::FakeSleeper;
using pc::testing::FakeTransport;
using pc::testing::with_fix;

namespace {

struct Fixture : pc::testing::FakeClient {
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
                    with_fix("work pool \"gone\" not found at http://h/api", Hint::kApiGone));

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
  const auto heartbeat = f.client.start_heartbeat("etl", "w1", std::chrono::seconds(30));
  const auto answered = f.client.poll_started(std::chrono::milliseconds(0));
  REQUIRE(answered.size() == 1);
  CHECK(answered[0].first == heartbeat);
  CHECK_FALSE(answered[0].second);
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

TEST_CASE("PrefectClient create_flow_run bodies", "[prefect]") {
  Fixture f;
  const char* run = R"({"id":"r1","state":{"type":"SCHEDULED","name":"Scheduled"}})";
  f.transport.reply(201, run).reply(201, run).reply(404, R"({"detail":"Deployment not found"})");
  f.client.create_flow_run_from_deployment("d 1");
  CHECK(f.req(0).method == "POST");
  CHECK(f.req(0).url == "http://h/api/deployments/d%201/create_flow_run");
  CHECK(f.body(0) == json::parse(R"({"state":{"type":"SCHEDULED"}})"));
  f.client.create_flow_run_from_deployment("d1", json{{"parameters", {{"x", 2}}}, {"tags", {"t"}}});
  CHECK(f.body(1) == json::parse(R"({"parameters":{"x":2},"tags":["t"]})"));
  CHECK_THROWS_WITH(f.client.create_flow_run_from_deployment("d2"),
                    with_fix("deployment d2 not found when creating a flow run", Hint::kApiGone));
}

TEST_CASE("PrefectClient deployment by name: the real server's encoding", "[prefect]") {
  Fixture f;
  f.transport.reply(200, R"({"id":"d1","name":"my dep"})").reply(404, R"({"detail":"Not Found"})");
  CHECK(f.client.read_deployment_by_name("my flow", "my dep")->name == "my dep");
  // Verified against Prefect 3.8.8: %20 matches "my flow", '+' does not.
  CHECK(f.req(0).url == "http://h/api/deployments/name/my%20flow/my%20dep");
  CHECK(f.req(0).method == "GET");
  CHECK(f.req(0).body.empty());
  CHECK_FALSE(f.client.read_deployment_by_name("f", "x/y&z%"));
  CHECK(f.req(1).url == "http://h/api/deployments/name/f/x%2Fy%26z%25");
}

TEST_CASE("PrefectClient flow run filter shapes", "[prefect]") {
  SECTION("nothing set: paging only") {
    CHECK(flow_run_filter_body(FlowRunFilter{}, true) ==
          json::parse(R"({"limit":200,"offset":0,"sort":"EXPECTED_START_TIME_ASC"})"));
    CHECK(flow_run_filter_body(FlowRunFilter{}, false) == json::object());
  }
  SECTION("ids, states and pools") {
    FlowRunFilter filter;
    filter.ids = {"a", "b"};
    filter.state_types = {StateType::kCancelling};
    filter.work_pool_names = {"p"};
    filter.limit = 10;
    filter.offset = 20;
    filter.sort = "ID_DESC";
    CHECK(flow_run_filter_body(filter, true) == json::parse(R"({
        "flow_runs":{"state":{"type":{"any_":["CANCELLING"]}},"id":{"any_":["a","b"]}},
        "work_pools":{"name":{"any_":["p"]}},"limit":10,"offset":20,"sort":"ID_DESC"})"));
  }
  SECTION("a real answer decodes") {
    Fixture f;
    f.transport.reply(200, R"([{"id":"r1","work_pool_name":"p","state":{"type":"RUNNING"}}])");
    auto runs = f.client.read_flow_runs(FlowRunFilter{});
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].current_type() == StateType::kRunning);
    CHECK(f.req().url == "http://h/api/flow_runs/filter");
  }
  SECTION("a non-list answer is an error") {
    Fixture f;
    f.transport.reply(200, R"({"oops":1})");
    CHECK_THROWS_WITH(f.client.read_flow_runs(FlowRunFilter{}),
                      with_fix("POST /flow_runs/filter: unexpected HTTP 200", Hint::kApiAnswer));
  }
}

TEST_CASE("PrefectClient set_state results", "[prefect]") {
  StateCreate crashed;
  crashed.type = StateType::kCrashed;
  crashed.name = "Crashed";
  crashed.message = "exit 1";
  crashed.state_details = json{{"scheduled_time", "x"}};
  SECTION("name, message and details are sent; force") {
    Fixture f;
    f.transport.reply(201, R"({"status":"ACCEPT","state":{"type":"CRASHED"},"details":{}})");
    f.client.set_flow_run_state("r1", crashed, true, "t-9");
    CHECK(f.body() == json::parse(R"({"state":{"type":"CRASHED","name":"Crashed",
        "message":"exit 1","state_details":{"scheduled_time":"x","flow_run_id":"r1",
        "transition_id":"t-9"}},"force":true})"));
  }
  SECTION("a duplicate of our own transition counts as accepted") {
    Fixture f;
    // Prefect 3.8.8's answer when a retried POST repeats an applied transition.
    f.transport.reply(200, R"({"status":"REJECT","details":{"type":"reject_details",
        "reason":"This run has already made this state transition."},
        "state":{"type":"PENDING","name":"Pending","state_details":{"transition_id":"t-1"}}})");
    StateCreate pending;
    auto r = f.client.set_flow_run_state("r1", pending, false, "t-1");
    CHECK(r.status == SetStateStatus::kAccept);
    CHECK(r.reason == "This run has already made this state transition.");
  }
  SECTION("a REJECT with someone else's transition stays a REJECT") {
    Fixture f;
    f.transport.reply(200, R"({"status":"REJECT","details":{"reason":"limit"},
        "state":{"type":"SCHEDULED","name":"AwaitingConcurrencySlot",
                 "state_details":{"transition_id":"t-1"}}})");
    StateCreate pending;
    CHECK(f.client.set_flow_run_state("r1", pending, false, "t-1").status ==
          SetStateStatus::kReject);
  }
  SECTION("404") {
    Fixture f;
    f.transport.reply(404, R"({"exception_message":"Flow run with id r1 not found"})");
    CHECK_THROWS_WITH(f.client.set_flow_run_state("r1", crashed, false, "t"),
                      with_fix("flow run r1 not found when setting its state", Hint::kApiGone));
  }
}

TEST_CASE("PrefectClient flow runs, flows, workers, variables, blocks, server", "[prefect]") {
  Fixture f;
  f.transport.reply(404, R"({"detail":"Flow run not found"})")
      .reply(204)
      .reply(404, R"({"detail":"Flow run not found"})")
      .reply(200, R"({"id":"f1","name":"my flow"})")
      .reply(200, R"([{"name":"w","status":"ONLINE","heartbeat_interval_seconds":30}])")
      .reply(404, R"({"detail":"Work pool \"x\" not found."})")
      .reply(200, R"({"id":"v","name":"my_var","value":{"a":[1,2]}})")
      .reply(404, R"({"detail":"Variable not found."})")
      .reply(200, R"({"id":"b","name":"my-secret","data":{"value":"s"}})")
      .reply(404, R"({"detail":"Block document not found"})")
      .reply(200, R"("3.8.8")")
      .reply(503)
      .reply(404, R"({"detail":"Work pool \"gone\" not found."})");
  CHECK_FALSE(f.client.read_flow_run("r0"));
  f.client.update_flow_run("r1", json{{"infrastructure_pid", "42"}});
  CHECK(f.req(1).method == "PATCH");
  CHECK(f.req(1).url == "http://h/api/flow_runs/r1");
  CHECK(f.body(1) == json{{"infrastructure_pid", "42"}});
  CHECK_THROWS_WITH(f.client.update_flow_run("r2", json::object()),
                    with_fix("flow run r2 not found when updating it", Hint::kApiGone));
  CHECK(f.client.read_flow("f1")["name"] == "my flow");
  auto workers = f.client.read_workers("etl");
  REQUIRE(workers.size() == 1);
  CHECK(f.req(4).url == "http://h/api/work_pools/etl/workers/filter");
  CHECK(f.body(4) == json::object());
  CHECK(f.client.read_workers("x").empty());
  CHECK(*f.client.read_variable_by_name("my_var") == json::parse(R"({"a":[1,2]})"));
  CHECK(f.req(6).url == "http://h/api/variables/name/my_var");
  CHECK_FALSE(f.client.read_variable_by_name("nope"));
  CHECK((*f.client.read_block_document("secret", "my-secret"))["data"]["value"] == "s");
  CHECK(f.req(8).url ==
        "http://h/api/block_types/slug/secret/block_documents/name/my-secret?include_secrets=true");
  CHECK_FALSE(f.client.read_block_document("secret", "nope"));
  CHECK(f.client.read_server_version() == "3.8.8");
  CHECK(f.req(10).url == "http://h/api/admin/version");
  CHECK_FALSE(f.client.health());  // one attempt only: 503 is not retried here
  CHECK(f.transport.pending() == 1);
  f.client.start_heartbeat("gone", "w", std::chrono::seconds(30));
  const auto gone = f.client.poll_started(std::chrono::milliseconds(0));
  REQUIRE(gone.size() == 1);
  CHECK_THROWS_WITH(
      std::rethrow_exception(gone[0].second),
      with_fix("work pool \"gone\" not found when sending the worker heartbeat", Hint::kApiGone));
}

TEST_CASE("PrefectClient scheduled runs: limit and the time format", "[prefect]") {
  Fixture f;
  f.transport.reply(200, "[]");
  auto when = std::chrono::system_clock::from_time_t(1767225600) + std::chrono::microseconds(5);
  f.client.get_scheduled_flow_runs("my pool", {}, when, 50);
  CHECK(f.req().url == "http://h/api/work_pools/my%20pool/get_scheduled_flow_runs");
  CHECK(f.body() == json::parse(R"({"work_queue_names":[],
      "scheduled_before":"2026-01-01T00:00:00.000005Z","limit":50})"));
}

TEST_CASE("PrefectClient block document by id", "[prefect]") {
  Fixture f;
  f.transport.reply(200, R"({"id":"b1","data":{"value":"x"}})").reply(404);
  auto doc = f.client.read_block_document_by_id("b1");
  REQUIRE(doc);
  CHECK((*doc)["data"]["value"] == "x");
  CHECK(f.req().url == "http://h/api/block_documents/b1?include_secrets=true");
  CHECK_FALSE(f.client.read_block_document_by_id("gone"));
}

TEST_CASE("PrefectClient look_up: each read decoded as alone, in one batch", "[prefect]") {
  Fixture f;
  f.transport.reply(200, R"({"id":"d1","name":"nightly","work_pool_name":"etl"})")
      .reply(404, R"({"detail":"Deployment not found"})")
      .reply(200, R"({"id":"f1","name":"hello"})")
      .reply(200, R"("3.8.8")");
  PrefectClient::Lookups wanted;
  wanted.deployment_ids = {"d1", "gone"};
  wanted.flow_ids = {"f1"};
  wanted.server_version = true;

  auto found = f.client.look_up(wanted);

  REQUIRE(f.transport.requests.size() == 4);
  CHECK(f.req(0).url == "http://h/api/deployments/d1");
  CHECK(f.req(3).url == "http://h/api/admin/version");
  REQUIRE(found.deployments.at("d1").value);
  CHECK((*found.deployments.at("d1").value)->name == "nightly");
  REQUIRE(found.deployments.at("gone").value);
  CHECK_FALSE(*found.deployments.at("gone").value);  // 404: none, as read_deployment
  CHECK(found.flows.at("f1").value->value("name", "") == "hello");
  REQUIRE(found.server_version);
  CHECK(found.server_version->value == std::optional<std::string>("3.8.8"));
}

TEST_CASE("PrefectClient look_up: a failed read is that read's error only", "[prefect]") {
  Fixture f;
  f.transport.reply(404, R"({"detail":"Flow not found"})").reply(200, R"({"not":"a string"})");
  PrefectClient::Lookups wanted;
  wanted.flow_ids = {"f1"};
  wanted.server_version = true;

  auto found = f.client.look_up(wanted);

  CHECK_FALSE(found.flows.at("f1").value);
  CHECK_THROWS_WITH(std::rethrow_exception(found.flows.at("f1").error),
                    Catch::Contains("flow f1 not found"));
  REQUIRE(found.server_version);
  CHECK_THROWS_WITH(std::rethrow_exception(found.server_version->error),
                    Catch::Contains("GET /admin/version"));
}

TEST_CASE("PrefectClient look_up: the runs read again by id, in the same batch", "[prefect]") {
  Fixture f;
  f.transport.reply(200, R"([{"id":"r2","name":"two","state":{"type":"RUNNING"}}])")
      .reply(200, R"("3.8.8")");
  PrefectClient::Lookups wanted;
  wanted.flow_run_ids = {"r1", "r2"};
  wanted.server_version = true;

  auto found = f.client.look_up(wanted);

  CHECK(f.transport.rounds == std::vector<std::size_t>{2});
  CHECK(json::parse(f.req(0).body)["flow_runs"]["id"]["any_"] == json::array({"r1", "r2"}));
  REQUIRE(found.flow_runs);
  REQUIRE(found.flow_runs->value);
  CHECK(found.flow_runs->value->size() == 1);  // r1 is gone
  CHECK(found.flow_runs->value->at("r2").name == "two");
}

TEST_CASE("PrefectClient read_together: one round, each answer decoded as its read alone",
          "[prefect]") {
  Fixture f;
  f.transport.reply(404, R"({"detail":"Work pool not found"})")
      .reply(200, R"({"not":"a list"})")
      .reply(200, "7");
  FlowRunFilter active;
  active.work_pool_names = {"etl"};

  auto [pool, runs, count] = f.client.read_together(PrefectClient::work_pool_read("etl"),
                                                    PrefectClient::flow_runs_read(active),
                                                    PrefectClient::count_read(active));

  CHECK(f.transport.rounds == std::vector<std::size_t>{3});
  REQUIRE(pool.value);
  CHECK_FALSE(*pool.value);  // 404: none, as read_work_pool
  CHECK_FALSE(runs.value);
  CHECK_THROWS_WITH(std::rethrow_exception(runs.error),
                    Catch::Contains("POST /flow_runs/filter: unexpected HTTP 200"));
  CHECK(count.value == std::optional<std::int64_t>(7));
  CHECK(f.req(2).url == "http://h/api/flow_runs/count");
}

TEST_CASE("PrefectClient: after a busy answer, reads still go together and beside the writes",
          "[prefect]") {
  Fixture f;
  // Two writes together, one answered 503 (SQLite "database is locked"):
  // from then on the client sends its writes one after another.
  f.transport.reply(204).reply(503).reply(204);
  f.client.patch_flow_runs(
      {{"r1", json{{"name", "a"}}, false}, {"r2", json{{"name", "b"}}, false}});
  REQUIRE(f.transport.requests.size() == 3);
  f.transport.rounds.clear();

  FlowRunFilter active;
  active.work_pool_names = {"etl"};
  SECTION("a round of reads: together") {
    f.transport.reply(200, "2").reply(200, "[]").reply(200, kPool);
    f.client.read_together(PrefectClient::count_read(active), PrefectClient::workers_read("etl"),
                           PrefectClient::work_pool_read("etl"));
    CHECK(f.transport.rounds == std::vector<std::size_t>{3});
  }
  SECTION("a round with the poll (its server marks the queue polled): one after another") {
    f.transport.reply(200, "2").reply(200, "[]");
    f.client.read_together(
        PrefectClient::count_read(active),
        PrefectClient::scheduled_runs_read("etl", {}, std::chrono::system_clock::now()));
    CHECK(f.transport.rounds == std::vector<std::size_t>{1, 1});
  }
  SECTION("a started read goes beside a started write; a second write waits its turn") {
    f.transport.reply(204).reply(200, "2").reply(204);
    f.client.start_patch({"r1", json{{"name", "c"}}, false});
    std::optional<std::int64_t> counted;
    f.client.start_call(PrefectClient::count_read(active),
                        [&](Outcome<std::int64_t> answered) { counted = answered.get(); });
    f.client.start_patch({"r2", json{{"name", "d"}}, false});
    CHECK(f.transport.requests.size() == 5);  // the PATCH and the count; not the second PATCH
    while (f.client.in_flight()) {
      f.client.poll_started(std::chrono::milliseconds(0));
    }
    CHECK(f.transport.requests.size() == 6);
    CHECK(counted == std::optional<std::int64_t>(2));
  }
  CHECK(f.transport.pending() == 0);
}
