#include "prefect/events.hpp"

#include <signal.h>

#include <catch2/catch.hpp>

#include "prefect/exit_info.hpp"

using namespace pc;
using json = nlohmann::json;

namespace {

WorkerEventContext worker() {
  return {"Cycle Worker_1", "process", "1.2.3", "pool-id", "my-pool"};
}

FlowRun run() {
  FlowRun r;
  r.id = "run-1";
  r.name = "silly-fox";
  r.flow_id = "flow-1";
  r.deployment_id = "dep-1";
  r.work_queue_id = "queue-1";
  r.work_queue_name = "default";
  r.tags = {"b", "a", "b"};
  return r;
}

const json* role(const json& related, const std::string& name) {
  for (const auto& r : related) {
    if (r["prefect.resource.role"] == name) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("slugify: Prefect's worker slug", "[prefect][events]") {
  CHECK(slugify("Cycle Worker_1") == "cycle-worker-1");
  CHECK(slugify("  --prefect-cycle-host.local--") == "prefect-cycle-host-local");
  CHECK(slugify("ABC") == "abc");
  CHECK(slugify("") == "");
}

TEST_CASE("worker events: shaped as Prefect's worker shapes them", "[prefect][events]") {
  const RunResources resources{run(), "nightly", "etl"};

  SECTION("the worker is the resource") {
    const json e = worker_started_event(worker());
    CHECK(e["event"] == "prefect.worker.started");
    CHECK(e["resource"]["prefect.resource.id"] == "prefect.worker.process.cycle-worker-1");
    CHECK(e["resource"]["prefect.resource.name"] == "Cycle Worker_1");
    CHECK(e["resource"]["prefect.worker-type"] == "process");
    CHECK(e["related"] == json::array({{{"prefect.resource.id", "prefect.work-pool.pool-id"},
                                        {"prefect.resource.role", "work-pool"},
                                        {"prefect.resource.name", "my-pool"}}}));
    CHECK(e["id"].get<std::string>().size() == 36);
    CHECK(e["occurred"].get<std::string>().back() == 'Z');
    CHECK_FALSE(e.contains("follows"));
    const json stopped = worker_stopped_event(worker(), e["id"].get<std::string>());
    CHECK(stopped["event"] == "prefect.worker.stopped");
    CHECK(stopped["follows"] == e["id"]);
  }

  SECTION("a run's events relate deployment, flow, run, tags, queue and pool") {
    const json submitted = run_submitted_event(worker(), resources);
    CHECK(submitted["event"] == "prefect.worker.submitted-flow-run");
    const json& related = submitted["related"];
    std::vector<std::string> ids;
    for (const auto& r : related) {
      ids.push_back(r["prefect.resource.id"]);
    }
    CHECK(ids == std::vector<std::string>{"prefect.deployment.dep-1", "prefect.flow.flow-1",
                                          "prefect.flow-run.run-1", "prefect.tag.a",
                                          "prefect.tag.b", "prefect.work-queue.queue-1",
                                          "prefect.work-pool.pool-id"});
    CHECK((*role(related, "deployment"))["prefect.resource.name"] == "nightly");
    CHECK((*role(related, "flow"))["prefect.resource.name"] == "etl");
    CHECK((*role(related, "flow-run"))["prefect.resource.name"] == "silly-fox");
    CHECK((*role(related, "work-queue"))["prefect.resource.name"] == "default");
    CHECK_FALSE(role(related, "flow-run")->contains("prefect.infrastructure.identifier"));

    const json executed =
        run_executed_event(worker(), resources, "4242", -9, submitted["id"].get<std::string>());
    CHECK(executed["event"] == "prefect.worker.executed-flow-run");
    CHECK(executed["follows"] == submitted["id"]);
    const json& flow_run = *role(executed["related"], "flow-run");
    CHECK(flow_run["prefect.infrastructure.identifier"] == "4242");
    CHECK(flow_run["prefect.infrastructure.status-code"] == "-9");
    CHECK_FALSE(
        role(executed["related"], "deployment")->contains("prefect.infrastructure.identifier"));
  }

  SECTION("no flow name, no queue id: left out, not empty") {
    FlowRun bare = run();
    bare.work_queue_id.clear();
    const json related = run_related(worker(), RunResources{bare, "", ""});
    CHECK_FALSE(role(related, "work-queue"));
    CHECK_FALSE((*role(related, "flow")).contains("prefect.resource.name"));
  }
}

TEST_CASE("run_log_record: a line of Prefect's worker logger", "[prefect][events]") {
  const json record = run_log_record("run-1", RunLogLevel::kWarning, "hello",
                                     std::chrono::system_clock::time_point{});
  CHECK(record == json{{"name", "prefect.flow_runs.worker"},
                       {"level", 30},
                       {"message", "hello"},
                       {"timestamp", "1970-01-01T00:00:00.000000Z"},
                       {"flow_run_id", "run-1"}});
}

TEST_CASE("exit_info: Prefect's status codes and explanations", "[prefect][events]") {
  auto signalled = [](int sig) { return exit_info(ExitStatus{-1, sig}); };
  auto exited = [](int code) { return exit_info(ExitStatus{code, 0}); };

  CHECK(signalled(SIGKILL).status_code == -9);
  CHECK(signalled(SIGKILL).explanation.find("SIGKILL") != std::string::npos);
  CHECK(signalled(SIGKILL).explanation.find("memory") != std::string::npos);
  CHECK(signalled(SIGKILL).level == RunLogLevel::kError);
  CHECK(signalled(SIGTERM).status_code == -15);
  CHECK(signalled(SIGTERM).level == RunLogLevel::kInfo);
  CHECK(exited(137).explanation.find("out-of-memory") != std::string::npos);
  CHECK(exited(1).explanation == "Process exited with a general error.");
  CHECK(exited(127).explanation == "Command not found.");
  CHECK(exited(3).explanation == "Process exited with an unexpected status code.");
  CHECK(exited(0).level == RunLogLevel::kInfo);

  CHECK(exit_line("silly-fox", signalled(SIGKILL)) ==
        "Process for flow run 'silly-fox' exited with status code: -9; " +
            signalled(SIGKILL).explanation);
  CHECK(exit_line("silly-fox", exited(0)) == "Process for flow run 'silly-fox' exited cleanly.");
}
