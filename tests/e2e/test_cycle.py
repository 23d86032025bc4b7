"""The cycle end to end against a real Prefect server (issue 2)."""

import json
import socket
import threading
import time
import uuid

import pytest

from harness import PrefectServer, Prefect, free_port


def test_paused_pool_with_three_due_runs_completes_and_pauses(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    runs = prefect.schedule_runs(deployment_id, 3)
    assert prefect.pool(pool).is_paused

    result = cycle.run(pool)

    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 3
    assert prefect.pool(pool).is_paused
    assert result.summary["exit_code"] == 0
    assert result.summary["outcome"] == "ok"
    assert result.summary["runs"] == {"COMPLETED": 3}
    assert result.summary["pool_paused_at_end"] is True
    assert [p["name"] for p in result.summary["phases"]] == [
        "preflight", "resume", "trigger", "worker", "wait", "pause"]
    assert "cycle finished: exit 0 (ok)" in result.stderr
    assert "runs: 3 COMPLETED" in result.stderr


def test_trigger_two_deployments_one_with_spaces(prefect, pool, cycle):
    _, plain = prefect.deploy(pool, "flows.py:hello", name="plain")
    _, spaced = prefect.deploy(pool, "flows.py:hello_world", name="my deployment")
    assert spaced == "hello world/my deployment"

    result = cycle.run(pool, {"PREFECT_TRIGGER_DEPLOYMENTS": f"{plain},{spaced}"})

    assert result.returncode == 0, result
    triggered = result.summary["triggered_run_ids"]
    assert len(triggered) == 2
    assert [prefect.state_type(r) for r in triggered] == ["COMPLETED", "COMPLETED"]
    names = {prefect.run(r).deployment_id for r in triggered}
    assert len(names) == 2
    assert prefect.pool(pool).is_paused


def test_failing_flow_exits_1(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:fails")
    [run] = prefect.schedule_runs(deployment_id, 1)

    result = cycle.run(pool)

    assert result.returncode == 1, result
    assert prefect.state_type(run) == "FAILED"
    assert result.summary["runs"] == {"FAILED": 1}
    assert result.summary["outcome"] == "runs_failed"
    assert prefect.pool(pool).is_paused


def test_missing_trigger_deployment_is_a_configuration_error(prefect, pool, cycle):
    result = cycle.run(pool, {"PREFECT_TRIGGER_DEPLOYMENTS": "nope/missing"})

    assert result.returncode == 2, result
    assert ('PREFECT_TRIGGER_DEPLOYMENTS: deployment "nope/missing" not found' in result.stderr)
    # Found before anything changed: the pool was never resumed and is paused.
    assert prefect.pool(pool).is_paused
    assert result.summary["pool_resumed"] is False


def _fake_active_run(prefect, pool):
    """A run of the pool that is RUNNING without any process behind it."""
    from prefect.states import Running

    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run] = prefect.schedule_runs(deployment_id, 1)
    prefect.call("set_flow_run_state", uuid.UUID(run), Running(), force=True)
    return run


def test_wait_timeout_exits_5_and_pauses(prefect, pool, cycle):
    _fake_active_run(prefect, pool)

    result = cycle.run(pool, {"PREFECT_WAIT_TIMEOUT_SECONDS": "3"}, timeout=120)

    assert result.returncode == 5, result
    assert "wait timed out after 3 s" in result.stderr
    assert "1 flow run(s) still active" in result.stderr
    assert prefect.pool(pool).is_paused
    assert result.summary["outcome"] == "wait_timeout"


def test_wait_timeout_with_a_long_sleeping_run(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    [run] = prefect.schedule_runs(deployment_id, 1, {"seconds": 300})

    result = cycle.run(pool, {"PREFECT_WAIT_TIMEOUT_SECONDS": "20",
                              "PREFECT_CYCLE_GRACE_SECONDS": "5"}, timeout=180)

    assert result.returncode == 5, result
    assert result.duration < 120
    assert prefect.pool(pool).is_paused


def test_sigterm_during_wait_exits_143_and_pauses(prefect, pool, cycle):
    _fake_active_run(prefect, pool)
    started = time.monotonic()
    proc = cycle.start(pool)
    # Wait until the cycle is in its wait phase.
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if not prefect.pool(pool).is_paused:
            time.sleep(2)
            break
    proc.terminate()
    result = cycle.finish(proc, started, ["run"], timeout=60)
    seen = result.stderr

    assert result.returncode == 143, result
    assert "[phase=wait] phase started" in seen
    assert prefect.pool(pool).is_paused
    assert result.summary["outcome"] == "terminated"


def test_unreachable_api_exits_3_naming_the_url(cycle):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"

    result = cycle.run("any", {"PREFECT_API_URL": url, "PREFECT_API_REQUEST_TIMEOUT": "2"},
                       timeout=120)

    assert result.returncode == 3, result
    assert f"cannot reach Prefect API at {url}" in result.stderr
    assert result.duration < 60


class ConnectionRecorder:
    """A TCP listener that records every connection it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def test_invalid_configuration_exits_2_before_any_request(cycle):
    recorder = ConnectionRecorder()
    try:
        result = cycle.run("any", {
            "PREFECT_API_URL": f"http://127.0.0.1:{recorder.port}/api",
            "PREFECT_WORKER_FLOW_LIMIT": "abc",
        })
    finally:
        recorder.close()

    assert result.returncode == 2, result
    assert ('prefect-cycle: error: PREFECT_WORKER_FLOW_LIMIT: invalid integer "abc" '
            '(expected 1..1000)') in result.stderr
    assert recorder.connections == 0


@pytest.fixture(scope="module")
def auth_server():
    server = PrefectServer({"PREFECT_SERVER_API_AUTH_STRING": "admin:pc-s3cret-pass"}).start()
    yield server
    server.stop()


def test_auth_string_accepted_and_required(auth_server, tmp_path):
    from harness import Cycle

    prefect = Prefect(auth_server)
    pool = prefect.create_pool(paused=True)
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run] = prefect.schedule_runs(deployment_id, 1)
    cycle = Cycle(auth_server, tmp_path)

    rejected = cycle.run(pool)
    assert rejected.returncode == 3, rejected
    assert "401 Unauthorized" in rejected.stderr
    assert prefect.pool(pool).is_paused

    accepted = cycle.run(pool, {"PREFECT_API_AUTH_STRING": "admin:pc-s3cret-pass"})
    assert accepted.returncode == 0, accepted
    assert prefect.state_type(run) == "COMPLETED"
    assert prefect.pool(pool).is_paused
    assert "pc-s3cret-pass" not in accepted.output
    assert "pc-s3cret-pass" not in str(accepted.summary)


def test_api_key_never_printed(prefect, pool, cycle):
    canary = "pc-canary-key-123456"
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    prefect.schedule_runs(deployment_id, 1)

    result = cycle.run(pool, {"PREFECT_API_KEY": canary})
    config = cycle.run(pool, {"PREFECT_API_KEY": canary}, args=["config"])

    assert result.returncode == 0, result
    assert canary not in result.output
    assert result.summary is not None
    assert canary not in json.dumps(result.summary)
    assert config.returncode == 0, config
    assert canary not in config.output
    assert "PREFECT_API_KEY" in config.stdout and "***" in config.stdout
