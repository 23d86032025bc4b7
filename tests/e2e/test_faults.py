"""Faults (issue 6): a full cycle through tests/e2e/fault_proxy.py for each
fault at each phase, checked through Prefect's own client against the real
server: no run we claimed is left PENDING or RUNNING, no run executed twice,
the pool is paused at the end (or the exit code and message say it may still
be resumed), the exit code is the documented one, memory stays bounded."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from fault_proxy import FaultProxy, Rule
from harness import StatusSampler

TIMEOUT = 2  # PREFECT_API_REQUEST_TIMEOUT for these cycles

# Each run writes its id to the witness file, sleeps past a heartbeat, then
# reports COMPLETED through the API as a flow would (no Python: fast).
COMPLETING = (
    "sh -c 'echo $PREFECT__FLOW_RUN_ID >> {witness}; sleep 1.5; "
    "curl -sf --retry 8 --retry-all-errors -X POST "
    "\"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{{\\\"state\\\":{{\\\"type\\\":\\\"COMPLETED\\\"}},\\\"force\\\":true}}\" >/dev/null'"
)
# ... or exits 3 without reporting: the worker must report it CRASHED.
CRASHING = "sh -c 'echo $PREFECT__FLOW_RUN_ID >> {witness}; exit 3'"
# ... or reports RUNNING as a flow would and works until it is stopped.
RUNNING_UNTIL_STOPPED = (
    "sh -c 'echo $PREFECT__FLOW_RUN_ID >> {witness}; "
    "curl -sf --retry 8 --retry-all-errors -X POST "
    "\"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{{\\\"state\\\":{{\\\"type\\\":\\\"RUNNING\\\"}},\\\"force\\\":true}}\" >/dev/null; "
    "exec sleep 120'"
)

# phase -> (method, path regex, body substring, n-th matching call)
PHASES = {
    "resume": ("PATCH", r"^/api/work_pools/{pool}$", '"is_paused":false', 1),
    "trigger": ("POST", r"/deployments/[^/]+/create_flow_run$", None, 1),
    "poll": ("POST", r"/get_scheduled_flow_runs$", None, 1),
    "claim": ("POST", r"/flow_runs/[^/]+/set_state$", '"PENDING"', 1),
    "label": ("PATCH", r"/flow_runs/[^/]+/labels$", None, 1),
    "heartbeat": ("POST", r"/workers/heartbeat$", None, 2),
    "crashed": ("POST", r"/flow_runs/[^/]+/set_state$", '"CRASHED"', 1),
    "wait": ("POST", r"/flow_runs/count$", None, 1),
    "pause": ("PATCH", r"^/api/work_pools/{pool}$", '"is_paused":true', 1),
}

FAULTS = {
    "429": dict(action="status", status=429, retry_after="1"),
    "503": dict(action="status", status=503),
    "500": dict(action="status", status=500),
    "reset": dict(action="reset_before"),
    "drop_after_apply": dict(action="drop_after_apply"),
    "slow": dict(action="delay", seconds=TIMEOUT + 1.5),
    "truncated": dict(action="truncate"),
    "malformed": dict(action="malformed"),
    "huge": dict(action="huge"),
}
TRANSIENT = {"429", "503", "reset", "drop_after_apply", "slow"}


def expected_exit(phase: str, fault: str) -> int:
    """The documented exit code (design table: 0 ok, 1 runs failed, 3 API)."""
    if phase == "crashed":
        return 1  # the runs crashed; reporting it survives any one-off fault
    if phase == "label":
        return 0  # labels are best-effort, sent again later from the loop
    if fault in TRANSIENT:
        return 0  # retried by the client: the cycle goes on
    if phase in ("heartbeat", "claim", "wait", "pause"):
        # A later heartbeat; a skipped claim (the run stays SCHEDULED for the
        # next cycle); the count and the pause are tried three times.
        return 0
    if fault == "truncated" and phase == "resume":
        return 0  # a 204 has no body to cut
    return 3


@pytest.fixture
def proxy(prefect_server):
    p = FaultProxy(prefect_server.api_url.removesuffix("/api")).start()
    yield p
    p.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("phase", list(PHASES))
def test_fault(prefect, pool, cycle, proxy, tmp_path, phase, fault):
    witness = Path(tmp_path) / "witness"
    witness.touch()
    command = (CRASHING if phase == "crashed" else COMPLETING).format(witness=witness)
    deployment_id, name = prefect.deploy(pool, "flows.py:hello", job_variables={"command": command})
    [scheduled] = prefect.schedule_runs(deployment_id, 1)
    method, path, body, nth = PHASES[phase]
    rule = proxy.add(Rule(method, path.format(pool=re.escape(pool)), body_contains=body, nth=nth,
                          **FAULTS[fault]))

    proc = cycle.spawn(pool, {"PREFECT_API_URL": proxy.api_url,
                              "PREFECT_TRIGGER_DEPLOYMENTS": name,
                              "PREFECT_API_REQUEST_TIMEOUT": str(TIMEOUT),
                              "PREFECT_WORKER_HEARTBEAT_SECONDS": "1",
                              "PREFECT_WAIT_TIMEOUT_SECONDS": "60"})
    hwm = StatusSampler(proc.pid, "VmHWM", 0.02)
    result = proc.finish(timeout=180)
    peak = hwm.stop().peak

    assert rule.fired == 1, (f"the {fault} fault at {phase} never fired: {proxy.log}\n"
                             f"{result.output[-3000:]}")
    runs = prefect.pool_runs(pool)
    states = {str(r.id): r.state.type.value for r in runs}
    executions = witness.read_text().split()
    outcome = (f"{phase}/{fault}: exit {result.returncode}, states {sorted(states.values())}, "
               f"executions {len(executions)}")
    print(outcome)
    # Nothing we claimed is left PENDING or RUNNING, nothing ran twice.
    assert not {"PENDING", "RUNNING"} & set(states.values()), (outcome, result.output[-4000:])
    assert len(executions) == len(set(executions)), (outcome, executions)
    for run_id in executions:
        assert states[run_id] in ("COMPLETED", "CRASHED"), (outcome, result.output[-4000:])
    # Runs not executed are still SCHEDULED for the next cycle.
    assert all(states[r] == "SCHEDULED" for r in states if r not in executions), outcome
    assert result.returncode == expected_exit(phase, fault), (outcome, result.output[-4000:])
    assert prefect.pool(pool).is_paused, (outcome, result.output[-4000:])
    if result.returncode == 0 and not (phase == "claim" and fault not in TRANSIENT):
        assert scheduled in executions and len(states) == 2, (outcome, states, executions)
    # A huge body is refused, not read into memory.
    assert peak < 60 * 1024, (outcome, f"peak RSS {peak} KiB")
    summary = result.summary or {}
    assert summary.get("exit_code") == result.returncode, summary
    if phase == "label":
        # Sent again after the fault, without holding up the cycle.
        labels = {str(r.id): r.labels for r in runs}
        for run_id in executions:
            assert labels[run_id].get("prefect.worker.name"), (outcome, labels[run_id])


def test_permanent_failure_of_the_pause_says_the_pool_may_be_resumed(prefect, pool, cycle, proxy):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello",
                                      job_variables={"command": "true"})
    prefect.schedule_runs(deployment_id, 1)  # an empty cycle would not resume the pool
    rule = proxy.add(Rule("PATCH", rf"^/api/work_pools/{re.escape(pool)}$", "status", status=503,
                          body_contains='"is_paused":true', permanent=True))

    # One client retry per pause attempt (PREFECT_CLIENT_MAX_RETRIES): the
    # default 5 spends 97 s in back-off here, to the same end.
    result = cycle.run(pool, {"PREFECT_API_URL": proxy.api_url,
                              "PREFECT_API_REQUEST_TIMEOUT": str(TIMEOUT),
                              "PREFECT_CLIENT_MAX_RETRIES": "1"})

    assert rule.fired == 6, rule.fired  # 3 pause attempts x (first try + 1 retry)
    assert result.returncode == 3, result
    assert re.search(rf'could not pause work pool "{re.escape(pool)}": it may still be resumed',
                     result.output, re.I), result
    assert prefect.pool(pool).is_paused is False
    assert "may still be resumed" in json.dumps(result.summary).lower(), result.summary
    prefect.call("update_work_pool", pool, _pause())


def test_permanent_failure_of_the_count_ends_the_wait_with_exit_3(prefect, pool, cycle, proxy,
                                                                  tmp_path):
    command = COMPLETING.format(witness=tmp_path / "witness")
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello", job_variables={"command": command})
    prefect.schedule_runs(deployment_id, 1)
    rule = proxy.add(Rule("POST", r"/flow_runs/count$", "status", status=500, permanent=True))

    result = cycle.run(pool, {"PREFECT_API_URL": proxy.api_url,
                              "PREFECT_API_REQUEST_TIMEOUT": str(TIMEOUT)})

    # Asked once in the worker's last lap (that failure only makes the wait
    # count itself), then three times by the wait.
    assert rule.fired == 4, (rule.fired, result.output[-3000:])
    assert result.returncode == 3, result
    assert "could not count the active flow runs (failure 2 of 3)" in result.output, result
    assert "/flow_runs/count: 500 Internal Server Error" in result.output, result
    assert prefect.pool(pool).is_paused, result.output[-3000:]
    assert [r.state.type.value for r in prefect.pool_runs(pool)] == ["COMPLETED"]


def _pause():
    from prefect.client.schemas.actions import WorkPoolUpdate

    return WorkPoolUpdate(is_paused=True)


# Lines that would claim what did not happen when the pause or the CRASHED
# proposal is answered 502 for a while after a stop signal.
UNTRUE = ("the pool was paused", "stop requested", "MAY STILL BE RESUMED", "not retried")


@pytest.mark.parametrize("fault_at", ["pause", "crashed"])
def test_sigterm_then_502_for_a_few_seconds_still_pauses(prefect, pool, cycle, proxy, tmp_path,
                                                         fault_at):
    """Issue 33: a redeploy sends SIGTERM, and the edge in front of the server
    answers 502 for a few seconds. The pause (or the stopped run's CRASHED)
    keeps the spacing of its tries through the stop: the pool ends paused,
    the run CRASHED, exit 143, and no line says anything that did not
    happen."""
    witness = Path(tmp_path) / "witness"
    witness.touch()
    deployment_id, _ = prefect.deploy(
        pool, "flows.py:hello",
        job_variables={"command": RUNNING_UNTIL_STOPPED.format(witness=witness)})
    [run] = prefect.schedule_runs(deployment_id, 1)
    method, path, body, _ = PHASES[fault_at]
    rule = proxy.add(Rule(method, path.format(pool=re.escape(pool)), "status", status=502,
                          body_contains=body, for_seconds=2.5))

    proc = cycle.spawn(pool, {"PREFECT_API_URL": proxy.api_url,
                              "PREFECT_API_REQUEST_TIMEOUT": str(TIMEOUT),
                              "PREFECT_CYCLE_GRACE_SECONDS": "5"})
    deadline = time.monotonic() + 60
    while prefect.state_type(run) != "RUNNING":
        assert time.monotonic() < deadline, proc.stdout[-3000:] + proc.stderr[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=120)

    output = result.output
    # The fault lasted (several answers over 2.5 s), and ended before the
    # call gave up: its last try came after it.
    assert rule.fired >= 2, (rule.fired, proxy.log, output[-4000:])
    tried = [p for m, p, _ in proxy.log if m == method and re.search(path.format(
        pool=re.escape(pool)), p)]
    assert len(tried) > rule.fired, (proxy.log, output[-4000:])
    assert result.returncode == 143, output[-4000:]
    assert prefect.state_type(run) == "CRASHED", output[-4000:]
    assert witness.read_text().split() == [str(run)]
    assert prefect.pool_status(pool) == (True, "PAUSED"), output[-4000:]
    summary = result.summary or {}
    assert summary.get("pool_paused_at_end") is True, summary
    assert summary.get("runs") == {"CRASHED": 1}, summary
    for text in UNTRUE:
        assert text.lower() not in output.lower(), (text, output[-4000:])
    last = output.strip().splitlines()[-1]
    assert f'pool "{pool}" paused' in last, last
