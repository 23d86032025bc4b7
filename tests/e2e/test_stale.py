"""Runs left behind by a cycle killed with SIGKILL are found and marked CRASHED
by the next cycle of the same worker (issue 6, "Stale runs")."""

import time
import uuid

import pytest

from harness import kill_like_a_dead_container, wait_for

# Cold spawns and warm forks (PREFECT_CYCLE_WARM_START) alike.
pytestmark = pytest.mark.usefixtures("worker_mode")

WORKER = {"PREFECT_WORKER_NAME": "stale-test-worker"}


def _kill_cycle_and_its_runs(prefect, cycle, pool, runs, overrides):
    """A cycle killed with SIGKILL while its runs are RUNNING, and their processes
    dying with it (as in a container that is stopped hard)."""
    proc = cycle.start(pool, WORKER | overrides)

    def started():
        found = [prefect.run(r) for r in runs]
        return all(f.state.type.value == "RUNNING" and f.infrastructure_pid
                   for f in found) and found

    found = wait_for(started, 60, "the runs to be RUNNING with an infrastructure_pid")
    # Freeze the cycle first so that its pipes stay open: a flow whose stdout
    # breaks reports itself CRASHED, which is not the case under test. Then
    # the flows and the cycle die without a word.
    kill_like_a_dead_container(proc, [int(f.infrastructure_pid.split(":")[-1]) for f in found])
    time.sleep(0.5)
    assert [prefect.state_type(r) for r in runs] == ["RUNNING"] * len(runs)


def test_next_cycle_crashes_runs_whose_process_is_gone(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    runs = prefect.schedule_runs(deployment_id, 2, {"seconds": 300})
    _kill_cycle_and_its_runs(prefect, cycle, pool, runs, {})

    # Without recovery the orphans stay RUNNING; waiting for them would never end.
    off = cycle.run(pool, WORKER | {"PREFECT_CYCLE_RECOVER_STALE_RUNS": "false",
                                    "PREFECT_WAIT_FOR_COMPLETION": "false"})
    assert off.returncode == 0, off
    assert [prefect.state_type(r) for r in runs] == ["RUNNING", "RUNNING"]

    on = cycle.run(pool, WORKER)
    assert on.returncode == 0, on
    for r in runs:
        state = prefect.run(r).state
        assert state.type.value == "CRASHED"
        assert state.message.startswith("prefect-cycle found this flow run stale: its process ")
        assert "no longer exists (the cycle that started it was killed)" in state.message
    assert "stale flow run" in on.output
    assert prefect.pool(pool).is_paused


def test_runs_of_a_silent_worker_on_another_host(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    [run] = prefect.schedule_runs(deployment_id, 1, {"seconds": 300})
    fast = {"PREFECT_WORKER_HEARTBEAT_SECONDS": "1"}
    _kill_cycle_and_its_runs(prefect, cycle, pool, [run], fast)
    # As if the killed cycle had run in another container.
    prefect.call("update_flow_run", uuid.UUID(run), infrastructure_pid="other-container:4242")
    time.sleep(4)  # more than three heartbeat intervals

    result = cycle.run(pool, WORKER | fast)

    assert result.returncode == 0, result
    state = prefect.run(run).state
    assert state.type.value == "CRASHED"
    assert ('prefect-cycle worker "stale-test-worker", which claimed it, stopped heartbeating'
            in state.message), state.message


def test_live_runs_of_other_workers_are_left_alone(prefect, pool, cycle):
    from prefect.states import Running

    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run] = prefect.schedule_runs(deployment_id, 1)
    prefect.call("set_flow_run_state", uuid.UUID(run), Running(), force=True)
    prefect.call("update_flow_run", uuid.UUID(run), infrastructure_pid="elsewhere:1")

    result = cycle.run(pool, WORKER | {"PREFECT_WAIT_FOR_COMPLETION": "false"})

    assert result.returncode == 0, result
    assert prefect.state_type(run) == "RUNNING"
