#include "worker/native/run_journal.hpp"

#include <signal.h>

#include <catch2/catch.hpp>

#include "common/fake_clock.hpp"
#include "prefect/fake_client.hpp"

using namespace pc;
using namespace pc::testing;
using json = nlohmann::json;

namespace {

// Without a batch interval unless a test asks for one: each send() sends.
constexpr RunJournal::Options kAtOnce{
    .logs = true, .events = true, .batch_interval = std::chrono::milliseconds(0)};

struct Journal {
  FakeClient f;
  FakeClock clock;
  Redactor redactor;
  Logger log = Logger::null();
  RunJournal journal;

  explicit Journal(RunJournal::Options options = kAtOnce)
      : journal(f.client, clock, redactor, {"w", "process", "1.0", "pool-id", "pool"}, options,
                log) {}

  // The calls in flight end (the worker's pump does this in its loop),
  // those started on the ApiClient itself included.
  void pump() {
    while (f.client.in_flight() || f.api.in_flight() != 0) {
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
    Journal j(RunJournal::Options{
        .logs = false, .events = false, .batch_interval = std::chrono::milliseconds(0)});
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

TEST_CASE("RunJournal: a batch waits the interval for company, not at the end",
          "[worker][journal]") {
  Journal j(RunJournal::Options{});  // kJournalBatchInterval
  j.journal.learn(features("3.8.8"));
  j.journal.worker_started();
  j.journal.claimed(run(), "nightly", "etl");
  j.journal.send();
  CHECK(j.f.transport.requests.empty());
  CHECK(j.journal.pending());
  j.clock.advance(kJournalBatchInterval - std::chrono::milliseconds(1));
  j.journal.started("run-1", "4242", false);
  j.journal.send();
  CHECK(j.f.transport.requests.empty());
  j.clock.advance(std::chrono::milliseconds(1));  // the oldest line's interval is up
  j.f.transport.reply(201).reply(204);
  j.journal.send();
  j.pump();
  CHECK(j.paths() ==
        std::vector<std::string>{"POST http://h/api/logs/", "POST http://h/api/events"});
  CHECK(j.body(0).size() == 2);  // both lines in one request
  CHECK(j.body(1).size() == 2);  // both events in one request

  SECTION("finish() sends what is queued at once") {
    j.journal.ended("run-1", ExitStatus{0, 0});
    j.journal.send();
    CHECK(j.f.transport.requests.size() == 2);
    j.f.transport.reply(201).reply(204);
    j.journal.finish();
    j.pump();
    CHECK(j.f.transport.requests.size() == 4);
    CHECK_FALSE(j.journal.pending());
  }
}

TEST_CASE("RunJournal: a batch of kJournalBatchBytes goes without waiting", "[worker][journal]") {
  Journal j(RunJournal::Options{});  // kJournalBatchInterval
  j.journal.learn(features("3.8.8"));
  const std::string long_line(10 * 1024, 'x');
  std::size_t lines = 0;
  for (; lines * long_line.size() < kJournalBatchBytes - long_line.size(); ++lines) {
    j.journal.line("run-1", RunLogLevel::kInfo, long_line);
  }
  j.journal.send();
  CHECK(j.f.transport.requests.empty());  // just under the size, not waited for long enough
  j.journal.line("run-1", RunLogLevel::kInfo, long_line);
  j.f.transport.reply(201);
  j.journal.send();
  j.pump();
  REQUIRE(j.paths() == std::vector<std::string>{"POST http://h/api/logs/"});
  CHECK(j.body(0).size() == lines + 1);
  CHECK(j.clock.elapsed() == std::chrono::milliseconds(0));
}

TEST_CASE("RunJournal: events go beside a one-at-a-time client's writes", "[worker][journal]") {
  Journal j;
  j.journal.learn(features("3.8.8"));
  // Two writes sent together, one answered 429 (as 503): the client goes
  // one at a time from then on.
  j.f.transport.reply(201).reply(429, "", {{"Retry-After", "0"}}).reply(201);
  const ApiClient::Call write{"POST", "/flow_runs/x/set_state", json::object()};
  j.f.api.start(write);
  j.f.api.start(write);
  j.pump();
  const std::size_t before = j.f.transport.requests.size();
  REQUIRE(before == 3);  // the retry included
  // A write in flight, then the journal's logs and events.
  j.f.transport.reply(201).reply(204).reply(201);
  j.f.api.start(write);
  j.journal.worker_started();
  j.journal.line("run-1", RunLogLevel::kInfo, "one");
  j.journal.send();
  // The logs wait for the write's turn; the events do not.
  REQUIRE(j.f.transport.requests.size() == before + 2);
  CHECK(j.f.transport.requests[before].url == "http://h/api/flow_runs/x/set_state");
  CHECK(j.f.transport.requests[before + 1].url == "http://h/api/events");
  j.pump();
  REQUIRE(j.f.transport.requests.size() == before + 3);
  CHECK(j.f.transport.requests[before + 2].url == "http://h/api/logs/");
  CHECK_FALSE(j.journal.pending());
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
  SECTION("the version read failed: called again, finish() does not read it again") {
    Journal j;
    j.journal.state_set(run(), "CRASHED", "found stale");
    j.f.transport.reply(500);  // not retried: the client gives up on a 500
    j.journal.finish();
    j.journal.finish();
    j.pump();
    CHECK(j.paths() == std::vector<std::string>{"GET http://h/api/admin/version"});
    CHECK_FALSE(j.journal.pending());
  }
}
