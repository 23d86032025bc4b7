#include "worker/native/reports.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "worker/fake_prefect.hpp"

using namespace pc;
using namespace pc::testing;

namespace {

// Reports alone, over the in-memory server: no loop, no claims, no processes.
struct ReportsHarness : FakeApi {
  Timers timers{clock};
  Logger log = Logger::null();
  Redactor redactor;
  RunJournal journal{client, clock, redactor, {"w", "process", "1.0", "p1", "etl"}, {}, log};
  Reports reports{client, timers, log, journal};
  RunningMap running;

  // Run `id`'s process ended with `status`; the server holds it RUNNING.
  void ended(const std::string& id, ExitStatus status) {
    server.add_run(id, "RUNNING");
    FlowRun run;
    run.id = id;
    run.name = "run-" + id;
    running.emplace(id, Running(run, log));
    reports.add(running.extract(id), status);
  }

  // What the loop does between its rounds, until nothing is in flight.
  void settle() {
    for (int round = 0; round < 1000 && !reports.settled(); ++round) {
      reports.send();
      client.poll_started(std::chrono::milliseconds(0));
      timers.fire_due();
      clock.advance(std::chrono::milliseconds(100));
    }
  }

  std::vector<std::string> states() {
    std::vector<std::string> out;
    for (const auto& record : reports.take_records()) {
      out.push_back(record.id + " " + record.state_type);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("Reports: a process that failed while its run was RUNNING crashes it",
          "[worker][reports]") {
  ReportsHarness h;
  h.ended("r1", ExitStatus{1, 0});
  CHECK_FALSE(h.reports.settled());
  h.settle();
  CHECK(h.reports.settled());
  CHECK(h.server.proposals == std::vector<std::string>{"r1 CRASHED"});
  CHECK(h.states() == std::vector<std::string>{"r1 CRASHED"});
}

TEST_CASE("Reports: a run that could not start is CRASHED and recorded", "[worker][reports]") {
  ReportsHarness h;
  h.server.add_run("r2", "PENDING");
  FlowRun run;
  run.id = "r2";
  h.reports.crash_unstarted(run, "no such command");
  CHECK_FALSE(h.reports.settled());
  h.settle();
  CHECK(h.server.type_of("r2") == "CRASHED");
  CHECK(h.states() == std::vector<std::string>{"r2 CRASHED"});
}

TEST_CASE("Reports: a final proposal is tried three times, 1 s and 2 s apart, on timers",
          "[worker][reports]") {
  ReportsHarness h;
  h.server.add_run("r3", "SCHEDULED");
  std::vector<std::chrono::milliseconds> tried_at;
  const auto start = h.clock.now();
  h.server.on_set_state = [&](const std::string&, const json&, int) -> std::optional<HttpResponse> {
    tried_at.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(h.clock.now() - start));
    return answer(500, {{"detail", "internal error"}});
  };
  h.reports.propose_final({{.flow_run_id = "r3",
                            .state = {StateType::kCancelled, "", "gone", {}},
                            .force = true,
                            .transition_id = new_uuid4()}});
  h.settle();
  CHECK(h.reports.settled());
  REQUIRE(tried_at.size() == 3);
  CHECK(tried_at[1] - tried_at[0] >= std::chrono::seconds(1));
  CHECK(tried_at[1] - tried_at[0] < std::chrono::seconds(2));
  CHECK(tried_at[2] - tried_at[1] >= std::chrono::seconds(2));
  CHECK(h.server.type_of("r3") == "SCHEDULED");
}
