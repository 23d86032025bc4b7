#include "cli/on_demand.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "common/error.hpp"
#include "prefect/fake_client.hpp"

using namespace pc;
using nlohmann::json;

namespace {

const json kCronJob = json::parse(R"({
  "apiVersion": "batch/v1", "kind": "CronJob",
  "metadata": {"name": "prefect-cycle", "namespace": "prefect", "uid": "u-1"},
  "spec": {"schedule": "*/15 * * * *", "concurrencyPolicy": "Forbid",
           "jobTemplate": {"metadata": {"labels": {"app": "pc"}, "annotations": {"a": "b"}},
                           "spec": {"backoffLimit": 0, "template": {"spec": {
                             "restartPolicy": "Never",
                             "containers": [{"name": "c", "image": "img"}]}}}}}})");

OnDemandOptions railway() {
  OnDemandOptions o;
  o.platform = Platform::kRailway;
  o.pool = "etl";
  o.railway_service_instance_id = "si-1";
  o.token = "tok-secret-123";
  return o;
}

const char* kPool =
    R"({"id":"p1","name":"etl","type":"process","is_paused":true,"status":"PAUSED"})";

}  // namespace

TEST_CASE("job_from_cronjob is kubectl create job --from=cronjob", "[cli][on-demand]") {
  json job = job_from_cronjob(kCronJob);
  CHECK(job["apiVersion"] == "batch/v1");
  CHECK(job["kind"] == "Job");
  CHECK(job["metadata"]["generateName"] == "prefect-cycle-");
  CHECK_FALSE(job["metadata"].contains("name"));
  CHECK(job["metadata"]["annotations"] ==
        json({{"cronjob.kubernetes.io/instantiate", "manual"}, {"a", "b"}}));
  CHECK(job["metadata"]["labels"] == json({{"app", "pc"}}));
  CHECK(job["metadata"]["ownerReferences"][0]["uid"] == "u-1");
  CHECK(job["metadata"]["ownerReferences"][0]["controller"] == true);
  CHECK(job["spec"] == kCronJob["spec"]["jobTemplate"]["spec"]);

  SECTION("a rendered manifest has no uid: no owner") {
    json cj = kCronJob;
    cj["metadata"].erase("uid");
    CHECK_FALSE(job_from_cronjob(cj)["metadata"].contains("ownerReferences"));
  }
  SECTION("not a CronJob") {
    CHECK_THROWS_WITH(job_from_cronjob(json{{"kind", "Job"}}),
                      Catch::Contains("--k8s-cronjob-file: the document is not a batch/v1 "
                                      "CronJob"));
  }
}

TEST_CASE("platform_request builds each platform's request", "[cli][on-demand]") {
  SECTION("Railway: the mutation, to Railway's endpoint") {
    PlatformRequest r = platform_request(railway());
    CHECK(r.url == "https://backboard.railway.com/graphql/v2");
    CHECK(json::parse(r.payload) ==
          json({{"query",
                 "mutation($id: String!) { deploymentInstanceExecutionCreate(input: "
                 "{serviceInstanceId: $id}) }"},
                {"variables", {{"id", "si-1"}}}}));
    CHECK(r.verify_tls);
  }
  SECTION("Railway without the instance id") {
    OnDemandOptions o = railway();
    o.railway_service_instance_id.clear();
    CHECK_THROWS_WITH(platform_request(o),
                      Catch::Contains("--railway-service-instance-id: missing"));
  }
  SECTION("Kubernetes: the Job to the CronJob's namespace") {
    OnDemandOptions o;
    o.platform = Platform::kKubernetes;
    o.k8s_api_server = "https://k8s:6443/";
    o.k8s_cronjob = kCronJob;
    PlatformRequest r = platform_request(o);
    CHECK(r.url == "https://k8s:6443/apis/batch/v1/namespaces/prefect/jobs");
    CHECK(json::parse(r.payload) == job_from_cronjob(kCronJob));
    o.k8s_namespace = "other";
    o.k8s_skip_tls_verify = true;
    r = platform_request(o);
    CHECK(r.url == "https://k8s:6443/apis/batch/v1/namespaces/other/jobs");
    CHECK_FALSE(r.verify_tls);
    o.k8s_api_server = "k8s:6443";
    CHECK_THROWS_WITH(platform_request(o),
                      Catch::Contains("--k8s-api-server: \"k8s:6443\" is not an http(s) URL"));
  }
}

TEST_CASE("jinja_literal renders to itself", "[cli][on-demand]") {
  CHECK(jinja_literal(R"({"a":{"b":1}})") == R"({"a":{"b":1}})");
  CHECK(jinja_literal(R"({"cmd":"{{x}}"})") == R"({% raw %}{"cmd":"{{x}}"}{% endraw %})");
  CHECK_THROWS(jinja_literal("{% endraw %}"));
}

TEST_CASE("automation_body: trigger, action and fingerprint", "[cli][on-demand]") {
  OnDemandOptions o = railway();
  o.pool_id = "p1";
  PlatformRequest r = platform_request(o);
  json body = automation_body(o, r, "b1");
  CHECK(body["name"] == "prefect-cycle on-demand: etl");
  CHECK(body["trigger"]["match_related"]["prefect.resource.id"] == "prefect.work-pool.p1");
  CHECK(body["trigger"]["expect"] == json({"prefect.flow-run.Scheduled", "prefect.flow-run.Late"}));
  CHECK(body["trigger"]["within"] == 10);
  CHECK(body["actions"][0] ==
        json({{"type", "call-webhook"}, {"block_document_id", "b1"}, {"payload", r.payload}}));
  CHECK(body.dump().find("tok-secret-123") == std::string::npos);
  std::string spec = spec_of(body);
  CHECK(spec.size() == 16);
  CHECK(spec_of(automation_body(o, r, "b1")) == spec);
  o.debounce = std::chrono::seconds(30);
  CHECK(spec_of(automation_body(o, r, "b1")) != spec);
  CHECK(spec_of(json{{"description", "by hand"}}).empty());
}

TEST_CASE("apply_on_demand against the API", "[cli][on-demand]") {
  pc::testing::FakeClient f;
  std::ostringstream out;

  SECTION("a Prefect 2 server: says so, changes nothing") {
    f.transport.reply(200, R"("2.20.27")");
    CHECK(apply_on_demand(f.api, railway(), false, false, false, out) == ExitCode::kApi);
    CHECK(out.str().find("Prefect 2.20.27, which has no automations") != std::string::npos);
    CHECK(out.str().find("nothing changed") != std::string::npos);
    REQUIRE(f.transport.requests.size() == 1);
    CHECK(f.transport.requests[0].url == "http://h/api/admin/version");
  }

  SECTION("creates the block, then the automation; a second run changes nothing") {
    f.transport.reply(200, R"("3.8.8")")
        .reply(200, kPool)
        .reply(200, "[]")
        .reply(404, R"({"detail":"Block document not found"})")
        .reply(200, R"({"id":"t1"})")
        .reply(200, R"([{"id":"s1"}])")
        .reply(201, R"({"id":"b1"})")
        .reply(201, R"({"id":"a1"})");
    REQUIRE(apply_on_demand(f.api, railway(), false, false, false, out) == ExitCode::kOk);
    const auto& reqs = f.transport.requests;
    REQUIRE(reqs.size() == 8);
    CHECK(reqs[6].url == "http://h/api/block_documents/");
    json block = json::parse(reqs[6].body);
    CHECK(block["name"] == "prefect-cycle-on-demand-etl");
    CHECK(block["block_schema_id"] == "s1");
    CHECK(block["data"]["headers"]["Authorization"] == "Bearer tok-secret-123");
    json automation = json::parse(reqs[7].body);
    CHECK(automation["actions"][0]["block_document_id"] == "b1");
    CHECK(out.str() ==
          "block webhook/prefect-cycle-on-demand-etl: created\n"
          "automation \"prefect-cycle on-demand: etl\": created (id a1)\n");

    // The server now holds what was sent.
    json stored_automation = automation;
    stored_automation["id"] = "a1";
    json stored_block = {{"id", "b1"}, {"data", block["data"]}};
    f.transport.reply(200, R"("3.8.8")")
        .reply(200, kPool)
        .reply(200, json::array({stored_automation}).dump())
        .reply(200, stored_block.dump())
        .reply(200, R"({"id":"t1"})");
    std::ostringstream again;
    REQUIRE(apply_on_demand(f.api, railway(), false, false, false, again) == ExitCode::kOk);
    CHECK(reqs.size() == 13);
    CHECK(again.str() ==
          "block webhook/prefect-cycle-on-demand-etl: unchanged\n"
          "automation \"prefect-cycle on-demand: etl\": unchanged\n");

    SECTION("a new token updates the block only") {
      OnDemandOptions o = railway();
      o.token = "tok-new-456";
      f.transport.reply(200, R"("3.8.8")")
          .reply(200, kPool)
          .reply(200, json::array({stored_automation}).dump())
          .reply(200, stored_block.dump())
          .reply(200, R"({"id":"t1"})")
          .reply(204);
      std::ostringstream third;
      REQUIRE(apply_on_demand(f.api, o, false, false, false, third) == ExitCode::kOk);
      CHECK(reqs.back().method == "PATCH");
      CHECK(third.str().find("block webhook/prefect-cycle-on-demand-etl: updated") == 0);
      CHECK(third.str().find("automation \"prefect-cycle on-demand: etl\": unchanged") !=
            std::string::npos);
    }
  }

  SECTION("--dry-run writes nothing and shows no secret") {
    f.transport.reply(200, R"("3.8.8")")
        .reply(200, kPool)
        .reply(200, "[]")
        .reply(404)
        .reply(200, R"({"id":"t1"})");
    REQUIRE(apply_on_demand(f.api, railway(), false, true, false, out) == ExitCode::kOk);
    CHECK(f.transport.requests.size() == 5);
    for (const auto& r : f.transport.requests) {
      CHECK((r.method == "GET" || r.url.find("/filter") != std::string::npos));
    }
    CHECK(out.str().find("would be created") != std::string::npos);
    CHECK(out.str().find("deploymentInstanceExecutionCreate") != std::string::npos);
    CHECK(out.str().find("tok-secret-123") == std::string::npos);
  }

  SECTION("--remove deletes both by id") {
    f.transport.reply(200, R"("3.8.8")")
        .reply(200, kPool)
        .reply(200, R"([{"id":"a1","name":"prefect-cycle on-demand: etl"}])")
        .reply(200, R"({"id":"b1","data":{}})")
        .reply(204)
        .reply(204);
    REQUIRE(apply_on_demand(f.api, railway(), false, false, true, out) == ExitCode::kOk);
    CHECK(f.transport.requests[4].method == "DELETE");
    CHECK(f.transport.requests[4].url == "http://h/api/automations/a1");
    CHECK(f.transport.requests[5].url == "http://h/api/block_documents/b1");
  }
}

TEST_CASE("on_demand_options: the token from the environment only", "[cli][on-demand]") {
  Config config;
  config.work_pool = "etl";
  OnDemandFlags flags;
  flags.platform = "railway";
  OnDemandOptions o = on_demand_options(flags, config, {{"PREFECT_CYCLE_PLATFORM_TOKEN", "t-123"}});
  CHECK(o.token == "t-123");
  CHECK(o.pool == "etl");
  flags.platform = "heroku";
  CHECK_THROWS_WITH(on_demand_options(flags, config, {}),
                    Catch::Contains("--platform: \"heroku\" is not a platform (expected railway "
                                    "or kubernetes)"));
  flags.platform = "railway";
  flags.debounce_seconds = 0;
  CHECK_THROWS_WITH(on_demand_options(flags, config, {}),
                    Catch::Contains("--debounce: \"0\" is out of range"));
}
