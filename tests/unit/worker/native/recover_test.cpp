#include "worker/native/recover.hpp"

#include <catch2/catch.hpp>

using namespace pc;

namespace {

bool alive(long pid) {
  return pid == 100;
}

FlowRun run_with(const std::string& infra) {
  FlowRun run;
  run.id = "r1";
  run.infrastructure_pid = infra;
  return run;
}

}  // namespace

TEST_CASE("claim messages name the worker", "[worker]") {
  CHECK(claim_message("prefect-cycle-abc") ==
        "claimed by prefect-cycle worker \"prefect-cycle-abc\"");
  CHECK(claimer_from_message(claim_message("w 1")) == std::optional<std::string>("w 1"));
  CHECK_FALSE(claimer_from_message(""));
  CHECK_FALSE(claimer_from_message("claimed by prefect-cycle worker \"\""));
  CHECK_FALSE(claimer_from_message("Run submitted by worker x"));
}

TEST_CASE("stale_reason: only runs proven orphaned", "[worker]") {
  const std::string own = "prefect-cycle-here";
  const WorkerLiveness none;
  const WorkerLiveness live{true, false, "2026-12-01T00:00:00Z"};
  const WorkerLiveness silent{true, true, "2026-12-01T00:00:00Z"};

  // On this host: the process decides.
  CHECK(stale_reason(run_with("here:200"), "here", std::nullopt, none, own, &alive) ==
        "its process here:200 no longer exists (the cycle that started it was killed)");
  CHECK(
      stale_reason(run_with("here:100"), "here", std::string("gone"), silent, own, &alive).empty());
  // Another host, claimed by a prefect-cycle worker: its row decides.
  CHECK(stale_reason(run_with("pod-b:7"), "here", std::string("prefect-cycle-pod-b"), live, own,
                     &alive)
            .empty());
  CHECK(stale_reason(run_with("pod-b:7"), "here", std::string("prefect-cycle-pod-b"), silent, own,
                     &alive) ==
        "prefect-cycle worker \"prefect-cycle-pod-b\", which claimed it, stopped heartbeating "
        "(last heartbeat 2026-12-01T00:00:00Z); its process pod-b:7 cannot be alive without it "
        "(the cycle that ran it was killed, e.g. its container stopped)");
  // A PENDING run that never got a process.
  CHECK_FALSE(
      stale_reason(run_with(""), "here", std::string("prefect-cycle-pod-b"), silent, own, &alive)
          .empty());
  // No claimer known (Prefect's own worker, a person): never ours to judge.
  CHECK(stale_reason(run_with("pod-b:7"), "here", std::nullopt, silent, own, &alive).empty());
  // The claimer's row is gone: only our own name may be judged.
  CHECK(stale_reason(run_with("pod-b:7"), "here", std::string("other"), none, own, &alive).empty());
  CHECK_FALSE(stale_reason(run_with(""), "here", own, none, own, &alive).empty());
}
