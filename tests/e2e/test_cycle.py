"""The cycle end to end against a real Prefect server (issue 2): resume →
trigger → preflight → worker → wait → pause, exit codes, auth and secrets."""

import json
import signal
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fault_proxy import FaultProxy
from harness import AUTH_STRING, ConnectionRecorder, Cycle, free_port

def assert_paused(prefect, pool):
    assert prefect.pool_status(pool) == (True, "PAUSED")


def test_empty_cycle_changes_nothing_on_the_server(prefect, prefect_server, pool, deploy, cycle):
    """Nothing to trigger, nothing due (a run scheduled for tomorrow), nothing
    active: three reads, no resume/pause pair, no worker row."""
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    [later] = prefect.schedule_runs(deployment_id, 1, start=tomorrow)
    recorder = FaultProxy(prefect_server.api_url.removesuffix("/api")).start()
    try:
        result = cycle.run(pool, {"PREFECT_API_URL": recorder.api_url})
    finally:
        recorder.stop()

    assert result.returncode == 0, result
    requests = [(method, path.split("?")[0]) for method, path, _ in recorder.log]
    # The pool and the due runs go together (in flight at once: either may
    # reach the server first), then the active count.
    assert len(requests) == 3, requests
    assert sorted(requests[:2]) == [("GET", f"/api/work_pools/{pool}"),
                                    ("POST", "/api/flow_runs/filter")], requests
    assert requests[2] == ("POST", "/api/flow_runs/count"), requests
    assert [(p["name"], p["status"]) for p in result.summary["phases"]] == [
        ("preflight", "skipped"), ("resume", "skipped"), ("trigger", "skipped"),
        ("worker", "skipped"), ("wait", "skipped"), ("pause", "skipped")], result.summary
    assert result.summary["pool_paused_at_end"] is True
    assert "nothing is changed on the server" in result.output, result
    assert_paused(prefect, pool)
    assert prefect.state_type(later) == "SCHEDULED"
    assert prefect.call("read_workers_for_work_pool", pool) == []


@pytest.mark.usefixtures("worker_mode")
def test_paused_pool_with_three_due_runs_completes_and_pauses(
        prefect, pool, deploy, schedule_runs, run_cycle):
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    runs = schedule_runs(deployment_id, 3)
    assert_paused(prefect, pool)

    result = run_cycle()

    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 3
    for r in runs:  # really executed by Prefect's engine, not just marked
        assert prefect.states(r) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    assert_paused(prefect, pool)
    summary = result.summary
    assert summary["exit_code"] == 0
    assert summary["outcome"] == "ok"
    assert summary["pool"] == pool
    assert summary["runs"] == {"COMPLETED": 3}
    assert summary["pool_paused_at_end"] is True
    assert [(p["name"], p["status"]) for p in summary["phases"]] == [
        ("preflight", "skipped"), ("resume", "ok"), ("trigger", "skipped"),
        ("worker", "ok"), ("wait", "ok"), ("pause", "ok")]
    for phase in summary["phases"]:
        assert isinstance(phase["duration_ms"], int) and phase["duration_ms"] >= 0
    assert "cycle finished: exit 0 (ok)" in result.output
    assert "runs: 3 COMPLETED" in result.output


def test_trigger_two_deployments_one_with_spaces(prefect, pool, deploy, run_cycle):
    plain_id, plain = deploy(pool, "flows.py", "hello", name="plain")
    spaced_id, spaced = deploy(pool, "flows.py", "hello_world", name="my deployment")
    assert spaced == "hello world/my deployment"

    result = run_cycle({"PREFECT_TRIGGER_DEPLOYMENTS": f"{plain},{spaced}"})

    assert result.returncode == 0, result
    triggered = result.summary["triggered_run_ids"]
    assert len(triggered) == 2
    assert [prefect.state_type(r) for r in triggered] == ["COMPLETED", "COMPLETED"]
    assert {str(prefect.run(r).deployment_id) for r in triggered} == {plain_id, spaced_id}
    assert result.summary["runs"] == {"COMPLETED": 2}
    assert_paused(prefect, pool)


def test_failing_flow_exits_1(prefect, pool, deploy, schedule_runs, run_cycle):
    deployment_id, _ = deploy(pool, "flows.py", "fails")
    [run] = schedule_runs(deployment_id, 1)

    result = run_cycle()

    assert result.returncode == 1, result
    assert prefect.state_type(run) == "FAILED"
    assert "this flow fails on purpose" in prefect.state(run).message
    assert result.summary["exit_code"] == 1
    assert result.summary["runs"] == {"FAILED": 1}
    assert result.summary["outcome"] == "runs_failed"
    assert_paused(prefect, pool)


def test_missing_trigger_deployment_is_a_configuration_error(prefect, pool, deploy,
                                                             schedule_runs, run_cycle):
    # The project documents this as exit 2 (README "Exit codes" and "How it
    # differs"): the trigger deployments are looked up (404) before the pool is
    # resumed, so nothing changed on the server.
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    [due] = schedule_runs(deployment_id, 1)

    result = run_cycle({"PREFECT_TRIGGER_DEPLOYMENTS": "nope/missing"})

    assert result.returncode == 2, result
    assert 'PREFECT_TRIGGER_DEPLOYMENTS: deployment "nope/missing" not found' in result.output
    assert result.summary["exit_code"] == 2
    assert result.summary["pool_resumed"] is False
    assert_paused(prefect, pool)
    assert prefect.state_type(due) == "SCHEDULED"  # nothing was run either


def _fake_active_run(prefect, pool, deploy, schedule_runs):
    """A run of the pool that is RUNNING without any process behind it: the
    wait phase sees it active for as long as the test wants."""
    from prefect.states import Running

    deployment_id, _ = deploy(pool, "flows.py", "hello")
    [run] = schedule_runs(deployment_id, 1)
    prefect.call("set_flow_run_state", uuid.UUID(run), Running(), force=True)
    return run


def test_wait_timeout_exits_5_and_pauses(prefect, pool, deploy, schedule_runs, run_cycle):
    _fake_active_run(prefect, pool, deploy, schedule_runs)

    result = run_cycle({"PREFECT_WAIT_TIMEOUT_SECONDS": "3"}, timeout=120)

    assert result.returncode == 5, result
    assert "wait timed out after 3 s" in result.output
    assert "1 flow run(s) still active" in result.output
    assert result.summary["exit_code"] == 5
    assert result.summary["outcome"] == "wait_timeout"
    assert_paused(prefect, pool)


@pytest.mark.usefixtures("worker_mode")
def test_wait_timeout_5s_with_a_long_sleeping_run(prefect, pool, deploy, schedule_runs,
                                                  run_cycle):
    deployment_id, _ = deploy(pool, "flows.py", "sleeper")
    [run] = schedule_runs(deployment_id, 1, {"seconds": 300})

    result = run_cycle({"PREFECT_WAIT_TIMEOUT_SECONDS": "5",
                        "PREFECT_CYCLE_GRACE_SECONDS": "5"}, timeout=120)

    assert result.returncode == 5, result
    assert result.summary["exit_code"] == 5
    assert result.summary["outcome"] == "wait_timeout"
    # 5 s timeout + 5 s grace + the pause; far from the 300 s the flow sleeps.
    assert result.duration < 45, result
    assert_paused(prefect, pool)
    # Nothing lost: a run that reached RUNNING is stopped and CRASHED saying
    # why; one that had not is handed back to SCHEDULED for the next cycle.
    state = prefect.state(run)
    if "RUNNING" in prefect.states(run):
        assert state.type.value == "CRASHED", state
        assert state.message.startswith(
            "prefect-cycle stopped this flow run: wait timeout of 5 s reached"), state
    else:
        assert state.type.value == "SCHEDULED", state
    assert result.summary["runs"] == {state.type.value: 1}


@pytest.mark.usefixtures("worker_mode")
def test_sigterm_during_wait_exits_143_and_pauses(prefect, pool, deploy, schedule_runs,
                                                  start_cycle):
    _fake_active_run(prefect, pool, deploy, schedule_runs)
    proc = start_cycle()
    proc.wait_for_output("[phase=wait] phase started", timeout=60)
    assert prefect.pool_status(pool)[0] is False  # resumed while waiting

    proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=60)

    assert result.returncode == 143, result
    assert result.summary["exit_code"] == 143
    assert result.summary["outcome"] == "terminated"
    assert_paused(prefect, pool)


def test_unreachable_api_exits_3_naming_the_url(run_cycle):
    url = f"http://127.0.0.1:{free_port()}/api"

    result = run_cycle({"PREFECT_API_URL": url, "PREFECT_API_REQUEST_TIMEOUT": "2"},
                       timeout=120, pool="any-pool")

    assert result.returncode == 3, result
    assert f"cannot reach Prefect API at {url}" in result.output
    assert result.duration < 60, result
    assert result.summary["exit_code"] == 3


def test_invalid_configuration_exits_2_before_any_request(run_cycle):
    with ConnectionRecorder() as recorder:
        result = run_cycle({"PREFECT_API_URL": recorder.url,
                            "PREFECT_WORKER_FLOW_LIMIT": "abc"}, pool="any-pool")

    assert result.returncode == 2, result
    assert 'PREFECT_WORKER_FLOW_LIMIT: invalid integer "abc" (expected 1..1000)' in result.output
    assert "Traceback" not in result.output
    assert recorder.connections == 0


def test_auth_string_accepted_and_required(auth_prefect_server, auth_prefect, tmp_path):
    pool = auth_prefect.create_pool(paused=True)
    deployment_id, _ = auth_prefect.deploy_flow(pool, "flows.py", "hello")
    [run] = auth_prefect.schedule_runs(deployment_id, 1)
    cycle = Cycle(auth_prefect_server, tmp_path)

    rejected = cycle.run(pool)
    assert rejected.returncode == 3, rejected
    assert "401" in rejected.output
    assert auth_prefect.state_type(run) == "SCHEDULED"
    assert auth_prefect.pool_status(pool) == (True, "PAUSED")

    accepted = cycle.run(pool, {"PREFECT_API_AUTH_STRING": AUTH_STRING})
    assert accepted.returncode == 0, accepted
    assert auth_prefect.state_type(run) == "COMPLETED"
    assert auth_prefect.pool_status(pool) == (True, "PAUSED")
    password = AUTH_STRING.split(":", 1)[1]
    assert f"user:{password}" not in accepted.output
    assert f"user:{password}" not in json.dumps(accepted.summary)


def test_api_key_never_printed(prefect, pool, deploy, schedule_runs, run_cycle):
    canary = "pc-canary-key-123456"
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    [run] = schedule_runs(deployment_id, 1)
    env = {"PREFECT_API_KEY": canary, "PREFECT_WORKER_CYCLE_LOG_LEVEL": "trace"}

    result = run_cycle(env)
    config = run_cycle(env, args=["config"])

    assert result.returncode == 0, result
    assert prefect.state_type(run) == "COMPLETED"
    assert canary not in result.output
    assert result.summary is not None
    assert canary not in json.dumps(result.summary)
    assert config.returncode == 0, config
    assert canary not in config.output
    assert "PREFECT_API_KEY" in config.stdout and "***" in config.stdout
