#include "cycle/plan_reads.hpp"

#include <catch2/catch.hpp>

#include "common/with_fix.hpp"
#include "prefect/fake_client.hpp"

using namespace pc;
using nlohmann::json;
using pc::testing::with_fix;

namespace {

json run(const std::string& id, const std::string& queue, const std::string& expected) {
  return {{"id", id},
          {"name", "run-" + id},
          {"work_queue_name", queue},
          {"expected_start_time", expected},
          {"state", {{"type", "SCHEDULED"}}}};
}

}  // namespace

TEST_CASE("read_due_runs: the pool's SCHEDULED runs in the queues, due before the horizon",
          "[cycle]") {
  pc::testing::FakeClient f;
  Config config;
  config.work_pool = "etl";
  config.work_queues = {"default", "fast"};
  const auto horizon = *parse_iso8601("2026-12-05T10:00:00Z");
  json page = json::array({run("a", "default", "2026-12-05T09:00:00Z"),
                           run("b", "slow", "2026-12-05T09:00:00Z"),    // another queue
                           run("c", "fast", "2026-12-05T11:00:00Z"),    // not yet due
                           run("d", "fast", "2026-12-05T10:00:00Z")});  // due at the horizon
  f.transport.reply(200, page.dump());

  auto due = read_due_runs(f.client, config, horizon);

  std::vector<std::string> ids;
  for (const auto& r : due) {
    ids.push_back(r.id);
  }
  CHECK(ids == std::vector<std::string>{"a", "d"});
  REQUIRE(f.transport.requests.size() == 1);  // a short page is the last one
  const json body = json::parse(f.transport.requests[0].body);
  CHECK(body["flow_runs"]["state"]["type"]["any_"] == json::array({"SCHEDULED"}));
  CHECK(body["work_pools"]["name"]["any_"] == json::array({"etl"}));
}

TEST_CASE("read_due_runs: a full page asks for the next one", "[cycle]") {
  pc::testing::FakeClient f;
  Config config;
  config.work_pool = "etl";
  const int limit = FlowRunFilter{}.limit;
  json full = json::array();
  for (int i = 0; i < limit; ++i) {
    full.push_back(run("r" + std::to_string(i), "default", "2026-12-05T09:00:00Z"));
  }
  f.transport.reply(200, full.dump()).reply(200, "[]");

  auto due = read_due_runs(f.client, config, *parse_iso8601("2026-12-05T10:00:00Z"));

  CHECK(due.size() == static_cast<std::size_t>(limit));
  REQUIRE(f.transport.requests.size() == 2);
  CHECK(json::parse(f.transport.requests[1].body)["offset"] == limit);
}

TEST_CASE("resolve_trigger_deployment: a missing one names the variable and the API", "[cycle]") {
  pc::testing::FakeClient f;
  Config config;
  config.api_url = "http://h/api";
  f.transport.reply(200, R"({"id":"d1","name":"nightly","work_pool_name":"etl"})").reply(404);

  CHECK(resolve_trigger_deployment(f.client, config, {"hello", "nightly"}).id == "d1");
  CHECK_THROWS_WITH(resolve_trigger_deployment(f.client, config, {"hello", "nope"}),
                    with_fix("PREFECT_TRIGGER_DEPLOYMENTS: deployment \"hello/nope\" not found at "
                             "http://h/api",
                             Hint::kDeploymentNotFound));
}
