"""The native process worker against a real Prefect server and real flows run
by Prefect's engine (issue 3)."""

import os
import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest

from harness import VENV_BIN, wait_for

PYTHON = str(VENV_BIN / "python")

# Cold spawns and warm forks (PREFECT_CYCLE_WARM_START) alike.
pytestmark = pytest.mark.usefixtures("worker_mode")


def _max_overlap(runs):
    events = []
    for run in runs:
        events.append((run.start_time, 1))
        events.append((run.end_time, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def test_ten_runs_limit_three(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    ids = prefect.schedule_runs(deployment_id, 10, {"seconds": 1})
    statuses = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                statuses.append(prefect.pool(pool).status)
            except Exception:  # noqa: BLE001 - only observing
                pass
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = cycle.run(pool, {"PREFECT_WORKER_FLOW_LIMIT": "3"})
    finally:
        stop.set()
        watcher.join()

    assert result.returncode == 0, result
    runs = [prefect.run(i) for i in ids]
    assert [r.state.type.value for r in runs] == ["COMPLETED"] * 10
    assert _max_overlap(runs) <= 3
    assert result.summary["runs"] == {"COMPLETED": 10}
    assert any(str(s).endswith("READY") and "NOT" not in str(s) for s in statuses), statuses
    assert prefect.pool(pool).is_paused


def test_hard_exit_is_crashed_with_the_exit_code(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hard_exit")
    [run] = prefect.schedule_runs(deployment_id, 1, {"code": 3})

    result = cycle.run(pool)

    assert result.returncode == 1, result
    state = prefect.run(run).state
    assert state.type.value == "CRASHED"
    assert "exit code 3" in state.message
    assert prefect.pool(pool).is_paused


def test_raising_flow_is_failed_not_crashed(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:fails")
    [run] = prefect.schedule_runs(deployment_id, 1)

    result = cycle.run(pool)

    assert result.returncode == 1, result
    assert prefect.state_type(run) == "FAILED"
    assert "CRASHED" not in prefect.states(run)


def test_job_variables_env_command_and_prefect_variable(prefect, pool, cycle, worker_mode):
    from prefect.client.schemas.actions import VariableCreate

    var_name = f"pc_var_{uuid.uuid4().hex[:6]}"
    prefect.call("create_variable", VariableCreate(name=var_name, value="resolved-from-variable"))
    deployment_id, _ = prefect.deploy(
        pool, "flows.py:show_env",
        job_variables={
            "env": {"PC_DEPLOYMENT_VAR": "from-deployment",
                    "PC_TEMPLATED": "{{ prefect.variables." + var_name + " }}"},
            "command": f"sh -c 'echo custom-command-ran; exec {PYTHON} -m prefect.engine'",
        })
    [run] = prefect.schedule_runs(
        deployment_id, 1, {"names": ["PC_DEPLOYMENT_VAR", "PC_TEMPLATED", "PC_RUN_VAR"]})
    prefect.call("update_flow_run", uuid.UUID(run),
                 job_variables={"env": {"PC_RUN_VAR": "from-run"}})

    result = cycle.run(pool)

    assert result.returncode == 0, result
    assert prefect.state_type(run) == "COMPLETED"
    assert "custom-command-ran" in result.output
    assert "ENV PC_DEPLOYMENT_VAR=from-deployment" in result.output
    assert "ENV PC_TEMPLATED=resolved-from-variable" in result.output
    assert "ENV PC_RUN_VAR=from-run" in result.output
    if worker_mode == "warm":  # another command than the engine's: spawned cold, said once
        assert result.output.count("such runs start cold") == 1, result.output


def test_cancel_a_running_run_through_the_api(prefect, pool, cycle):
    from prefect.states import Cancelling

    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    [run] = prefect.schedule_runs(deployment_id, 1, {"seconds": 300})
    started = time.monotonic()
    proc = cycle.start(pool, {"PREFECT_WORKER_QUERY_SECONDS": "2",
                              "PREFECT_CYCLE_GRACE_SECONDS": "5"})
    try:
        wait_for(lambda: prefect.state_type(run) == "RUNNING", 60, "the run to be RUNNING")
        pid = int(prefect.run(run).infrastructure_pid.split(":")[-1])
        cancelled_at = time.monotonic()
        prefect.call("set_flow_run_state", uuid.UUID(run), Cancelling(), force=True)
        wait_for(lambda: prefect.state_type(run) == "CANCELLED", 2 + 5 + 10, "CANCELLED")
        assert time.monotonic() - cancelled_at < 2 + 5 + 10
    finally:
        result = cycle.finish(proc, started, ["run"], timeout=120)
    assert result.returncode == 0, result  # a cancelled run is not a failure
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
    assert prefect.pool(pool).is_paused


def test_sigterm_crashes_running_and_reschedules_unstarted_runs(prefect, pool, cycle, tmp_path):
    sleeper_id, _ = prefect.deploy(pool, "flows.py:sleeper", name="sleeper")
    fast = tmp_path / "start-fast"  # the second cycle starts them at once
    slow_start_id, _ = prefect.deploy(
        pool, "flows.py:hello", name="slow-start",
        job_variables={"command": f"sh -c 'test -e {fast} || sleep 90; "
                                  f"exec {PYTHON} -m prefect.engine'"})
    running = prefect.schedule_runs(sleeper_id, 2, {"seconds": 300})
    unstarted = prefect.schedule_runs(slow_start_id, 2)
    started = time.monotonic()
    proc = cycle.start(pool, {"PREFECT_WORKER_FLOW_LIMIT": "4",
                              "PREFECT_CYCLE_GRACE_SECONDS": "5"})
    # Claims are sequential and a loaded server answers slowly, so the two
    # sleepers may be RUNNING before the last slow-start run is claimed: wait
    # for all four states (the slow starts stay PENDING for 90 s).
    expected = ["RUNNING", "RUNNING", "PENDING", "PENDING"]
    try:
        wait_for(lambda: [prefect.state_type(r) for r in running + unstarted] == expected, 60,
                 "two runs RUNNING and two PENDING")
    finally:
        proc.send_signal(signal.SIGTERM)
        result = cycle.finish(proc, started, ["run"], timeout=120)

    assert result.returncode == 143, result
    for r in running:
        state = prefect.run(r).state
        assert state.type.value == "CRASHED"
        assert "prefect-cycle stopped this flow run: SIGTERM received" in state.message
    assert [prefect.state_type(r) for r in unstarted] == ["SCHEDULED", "SCHEDULED"]
    assert prefect.pool(pool).is_paused

    fast.touch()
    second = cycle.run(pool)
    assert second.returncode == 0, second
    assert [prefect.state_type(r) for r in unstarted] == ["COMPLETED", "COMPLETED"]


def test_pool_of_another_type(prefect, cycle):
    pool = prefect.create_pool(type_="docker")

    native = cycle.run(pool)
    assert native.returncode == 2, native
    assert (f'work pool "{pool}" is of type "docker" but PREFECT_WORKER_TYPE is "process": the '
            "native worker runs process pools only; fix: set PREFECT_WORKER_TYPE (--worker-type) "
            "to the pool's type") in native.output
    assert prefect.pool(pool).is_paused

    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    prefect.schedule_runs(deployment_id, 1)  # an empty cycle would not start any worker
    cli = cycle.run(pool, {"PREFECT_WORKER_TYPE": "docker"})
    # Prefect's worker CLI runs for this type; without prefect-docker installed it fails,
    # and the cycle says so and pauses the pool again.
    assert "starting Prefect's worker:" in cli.output
    assert "--type docker" in cli.output
    assert cli.returncode == 3, cli
    assert prefect.pool(pool).is_paused
