#include "worker/native/run_journal.hpp"

#include <signal.h>

#include <catch2/catch.hpp>

#include "prefect/fake_client.hpp"

using namespace pc;
using namespace pc::testing;
using json = nlohmann::json;

namespace {

struct Journal {
  FakeClient f;
  Redactor redactor;
  Logger log = Logger::null();
  RunJournal journal;

  explicit Journal(RunJournal::Options options = {})
      : journal(f.client, redactor, {"w", "process", "1.0", "pool-id", "pool"}, options, log) {}

  // The calls in flight end (the worker's pump does this in its loop).
  void pump() {
    while (f.client.in_flight()) {
      f.client.poll_started(std::chrono::milliseconds(0));
    }
  }
  std::vector<std::string> paths() const {
    std::vector<std::string> out;
    for (const auto& r : f.transport.requests) {
      out.push_back(r.method + " " + r.url);
    }
    return out;
  }
  json body(std::size_t i) const { return json::parse(f.transport.requests.at(i).body); }
};

FlowRun run() {
  FlowRun r;
  r.id = "run-1";
  r.name = "silly-fox";
  r.flow_id = "flow-1";
  r.deployment_id = "dep-1";
  return r;
}

ServerFeatures features(const char* version) {
  return features_of(ServerVersion::parse(version));
}

}  // namespace

TEST_CASE("RunJournal: a run's lines and events, batched", "[worker][journal]") {
  Journal j;
  j.journal.worker_started();
  j.journal.claimed(run(), "nightly", "etl");
  j.journal.started("run-1", "4242", true);
  j.journal.send();
  CHECK(j.f.transport.requests.empty());  // the server's version is not known yet
  CHECK_FALSE(j.journal.pending());       // so nothing would go

  j.f.transport.reply(201).reply(204);
  j.journal.learn(features("3.8.8"));
  j.journal.send();
  j.pump();
  REQUIRE(j.paths() ==
          std::vector<std::string>{"POST http://h/api/logs/", "POST http://h/api/events"});
  const json logs = j.body(0);
  REQUIRE(logs.size() == 2);
  CHECK(logs[0]["message"] == "Worker 'w' submitting flow run 'run-1'");
  CHECK(logs[0]["name"] == "prefect.flow_runs.worker");
  CHECK(logs[0]["flow_run_id"] == "run-1");
  CHECK(logs[1]["message"].get<std::string>().find("process 4242") != std::string::npos);
  CHECK(logs[1]["message"].get<std::string>().find("warm") != std::string::npos);
  const json events = j.body(1);
  REQUIRE(events.size() == 2);
  CHECK(events[0]["event"] == "prefect.worker.started");
  CHECK(events[1]["event"] == "prefect.worker.submitted-flow-run");
  CHECK_FALSE(j.journal.pending());
  // Sent without the client's retries, within the journal's bound.
  CHECK(j.f.transport.requests[0].timeout <= kJournalSendBound);

  SECTION("the end: the exit line with Prefect's explanation, the executed event") {
    j.journal.ended("run-1", ExitStatus{-1, SIGKILL});
    j.f.transport.reply(201).reply(204);
    j.journal.send();
    j.pump();
    const json end_logs = j.body(2);
    CHECK(end_logs[0]["message"].get<std::string>().rfind(
              "Process for flow run 'silly-fox' exited with status code: -9; Process exited due "
              "to a SIGKILL signal.",
              0) == 0);
    CHECK(end_logs[0]["level"] == 40);
    CHECK(end_logs[1]["message"].get<std::string>().find("memory") != std::string::npos);
    const json executed = j.body(3)[0];
    CHECK(executed["event"] == "prefect.worker.executed-flow-run");
    CHECK(executed["follows"] == events[1]["id"]);
  }
}

TEST_CASE("RunJournal: a server without events gets none of them", "[worker][journal]") {
  SECTION("Prefect 2.20: only its logs route, no failed request") {
    Journal j;
    j.journal.worker_started();
    j.journal.claimed(run(), "nightly", "etl");
    j.journal.started("run-1", "4242", false);
    j.journal.ended("run-1", ExitStatus{0, 0});
    j.f.transport.reply(201);
    j.journal.learn(features("2.20.27"));
    j.journal.send();
    j.pump();
    CHECK(j.paths() == std::vector<std::string>{"POST http://h/api/logs/"});
    CHECK(j.body(0).size() == 3);  // submitting, opened, exited cleanly
    CHECK_FALSE(j.journal.pending());
  }

  SECTION("a 404 turns the route off for the rest of the cycle") {
    Journal j;
    j.journal.learn(features("3.8.8"));
    j.journal.worker_started();
    j.f.transport.reply(404, R"({"detail":"Not Found"})");
    j.journal.send();
    j.pump();
    j.journal.worker_stopped();
    j.journal.send();
    j.pump();
    CHECK(j.paths() == std::vector<std::string>{"POST http://h/api/events"});
    CHECK_FALSE(j.journal.pending());
  }

  SECTION("PREFECT_CYCLE_SEND_LOGS and PREFECT_CYCLE_EMIT_EVENTS off: nothing") {
    Journal j(RunJournal::Options{false, false});
    j.journal.learn(features("3.8.8"));
    j.journal.worker_started();
    j.journal.claimed(run(), "nightly", "etl");
    j.journal.send();
    CHECK(j.f.transport.requests.empty());
    CHECK_FALSE(j.journal.pending());
  }
}

TEST_CASE("RunJournal: best effort", "[worker][journal]") {
  Journal j;
  j.journal.learn(features("3.8.8"));
  j.journal.line("run-1", RunLogLevel::kInfo, "one");

  SECTION("a failed batch goes once more with the next, then is dropped") {
    j.f.transport.reply(503);
    j.journal.send();
    j.pump();
    CHECK(j.journal.pending());
    j.journal.line("run-1", RunLogLevel::kInfo, "two");
    j.f.transport.reply(500);
    j.journal.send();
    j.pump();
    CHECK(j.body(1).size() == 2);  // "one" again, with "two"
    CHECK_FALSE(j.journal.pending());
    CHECK(j.f.transport.requests.size() == 2);  // no retries of the client's
  }

  SECTION("one batch in flight at a time; what comes meanwhile goes next") {
    j.f.transport.reply(201).reply(201);
    j.journal.send();
    j.journal.line("run-1", RunLogLevel::kInfo, "two");
    j.journal.send();  // "one" is in flight
    CHECK(j.f.transport.requests.size() == 1);
    j.pump();  // its answer starts the next batch
    REQUIRE(j.f.transport.requests.size() == 2);
    CHECK(j.body(1)[0]["message"] == "two");
  }

  SECTION("secrets are redacted") {
    j.redactor.add_secret("hunter2-secret");
    j.journal.line("run-1", RunLogLevel::kError, "token hunter2-secret leaked");
    j.f.transport.reply(201);
    j.journal.send();
    j.pump();
    CHECK(j.f.transport.requests[0].body.find("hunter2") == std::string::npos);
    CHECK(j.body(0)[1]["message"] == "token *** leaked");
  }
}

TEST_CASE("RunJournal::finish: the version read only when something waits", "[worker][journal]") {
  SECTION("nothing queued: no request") {
    Journal j;
    j.journal.finish();
    CHECK(j.f.transport.requests.empty());
  }
  SECTION("a stale run's line, no claim: the version, then the line") {
    Journal j;
    FlowRun stale = run();
    j.journal.state_set(stale, "CRASHED", "found stale");
    j.f.transport.reply(200, R"("3.8.8")").reply(201);
    j.journal.finish();
    j.pump();
    CHECK(j.paths() ==
          std::vector<std::string>{"GET http://h/api/admin/version", "POST http://h/api/logs/"});
    CHECK(j.body(1)[0]["message"] == "Worker 'w' set flow run 'silly-fox' to CRASHED: found stale");
  }
}
