"""What Prefect's UI and automations see of a cycle (issue 32), against the
real server: the worker's lines on each run's Logs tab (POST /logs/filter),
the worker's events and the cycle event (POST /events/filter), and an
automation on the cycle event, made from examples/cycle-alert-automation.yaml
with a do-nothing action, that the server's triggers and actions services
fire when a cycle fails."""

import copy
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from harness import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cycle-alert-automation.yaml"

# The event persister writes events in batches (every few seconds); the
# triggers and actions services act on them as they come.
EVENTS_TIMEOUT = 60
# Prefect's event persister writes what it got every 5 s by default.
PERSISTER_FLUSH = 7


def api(server, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.api_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as r:
            text = r.read()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read()[:2000]!r}") from None


def run_logs(server, run_id):
    """The run's worker lines (logger prefect.flow_runs.worker), oldest first."""
    logs = api(server, "POST", "/logs/filter",
               {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC",
                "limit": 50})
    return [entry for entry in logs if entry["name"] == "prefect.flow_runs.worker"]


def events(server, prefixes, resource_ids=None):
    """Every event (up to 50, the most a page holds) whose name starts with one of `prefixes` and,
    when given, that names one of `resource_ids` as its resource or related."""
    body = {"filter": {"event": {"prefix": prefixes}, "order": "ASC"}, "limit": 50}
    if resource_ids:
        body["filter"]["any_resource"] = {"id": resource_ids}
    return api(server, "POST", "/events/filter", body)["events"]


def related(event, role):
    return [r for r in event["related"] if r.get("prefect.resource.role") == role]


def alert_automation(pool_id):
    """The README's automation (examples/), narrowed to this test's pool and
    with a do-nothing action instead of a notification block."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec = copy.deepcopy(spec)
    spec["name"] = f"prefect-cycle alert {pool_id}"
    for trigger in spec["trigger"]["triggers"]:
        trigger["match"]["prefect.resource.id"] = f"prefect.work-pool.{pool_id}"
    spec["actions"] = [{"type": "do-nothing"}]
    # As `prefect automation create --from-file` sends it: through Prefect's
    # model, which fills in what the file leaves out.
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore.model_validate(spec).model_dump(mode="json")


def test_runs_events_and_an_automation_on_a_failed_cycle(prefect_server, prefect, pool, deploy,
                                                         schedule_runs, run_cycle):
    pool_id = str(prefect.pool(pool).id)
    automation = api(prefect_server, "POST", "/automations/", alert_automation(pool_id))
    ok_dep, _ = deploy(pool, "flows.py", "hello", name="ok")
    bad_dep, _ = deploy(pool, "flows.py", "fails", name="bad")
    oom_dep, _ = deploy(pool, "flows.py", "killed_for_memory", name="oom")
    exit_dep, _ = deploy(pool, "flows.py", "hard_exit", name="exit")
    [ok] = schedule_runs(ok_dep, 1)
    [bad] = schedule_runs(bad_dep, 1)
    [oom] = schedule_runs(oom_dep, 1)
    [gone] = schedule_runs(exit_dep, 1, {"code": 1})

    result = run_cycle()
    assert result.returncode == 1, result  # a run failed
    assert prefect.state_type(ok) == "COMPLETED"
    assert prefect.state_type(bad) == "FAILED"
    assert prefect.state_type(oom) == "CRASHED"
    assert prefect.state_type(gone) == "CRASHED"

    # --- the Logs tab of each run: claimed, started, the exit and its explanation
    worker = result.summary["worker_name"]
    # A flow that raises is FAILED by Prefect's engine, whose process then
    # exits 0 (so Prefect's own worker says "exited cleanly" too); a process
    # that dies before reporting is CRASHED by us, and says why.
    expected_exit = {
        ok: "exited cleanly.",
        bad: "exited cleanly.",
        gone: "exited with status code: 1; Process exited with a general error.",
        oom: "exited with status code: -9; Process exited due to a SIGKILL signal. Typically "
             "caused by the operating system terminating the process for exceeding memory "
             "limits, or by manual cancellation.",
    }
    for run_id, exit_text in expected_exit.items():
        try:
            lines = wait_for(lambda r=run_id, t=exit_text: (
                ls := run_logs(prefect_server, r)) and any(t in x["message"] for x in ls) and ls,
                EVENTS_TIMEOUT, f"the exit line of run {run_id}")
        except AssertionError as e:
            raise AssertionError(f"{e}; its worker lines: {run_logs(prefect_server, run_id)}; "
                                 f"{result}") from None
        messages = [x["message"] for x in lines]
        assert messages[0] == f"Worker '{worker}' submitting flow run '{run_id}'", messages
        assert any(m.startswith("Opened process ") and "cold" in m for m in messages), messages
        assert any(exit_text in m for m in messages), messages
    oom_lines = run_logs(prefect_server, oom)
    exit_line = next(x for x in oom_lines if "status code: -9" in x["message"])
    assert exit_line["level"] == 40
    assert any("increase the memory limit" in x["message"] for x in oom_lines), oom_lines
    # The states we set ourselves say so, and why.
    for run_id in (oom, gone):
        assert any(x["message"].startswith(f"Worker '{worker}' set flow run ") and
                   " to CRASHED: " in x["message"] for x in run_logs(prefect_server, run_id))

    # --- the worker's events: a submitted/executed pair per run, linked
    run_ids = {ok, bad, oom, gone}
    deployments = {ok: ok_dep, bad: bad_dep, oom: oom_dep, gone: exit_dep}
    codes = {ok: "0", bad: "0", oom: "-9", gone: "1"}

    def worker_events():
        found = events(prefect_server, ["prefect.worker."], [f"prefect.work-pool.{pool_id}"])
        executed = [e for e in found if e["event"] == "prefect.worker.executed-flow-run"]
        stopped = [e for e in found if e["event"] == "prefect.worker.stopped"]
        return len(executed) == 4 and stopped and found

    found = wait_for(worker_events, EVENTS_TIMEOUT, "the worker's events")
    by_name = {}
    for e in found:
        by_name.setdefault(e["event"], []).append(e)
    assert len(by_name["prefect.worker.started"]) == 1
    started = by_name["prefect.worker.started"][0]
    assert by_name["prefect.worker.stopped"][0]["follows"] == started["id"]
    assert started["resource"]["prefect.resource.name"] == worker
    submitted = {related(e, "flow-run")[0]["prefect.resource.id"]: e
                 for e in by_name["prefect.worker.submitted-flow-run"]}
    assert set(submitted) == {f"prefect.flow-run.{r}" for r in run_ids}
    for e in by_name["prefect.worker.executed-flow-run"]:
        flow_run = related(e, "flow-run")[0]
        run_id = flow_run["prefect.resource.id"].removeprefix("prefect.flow-run.")
        assert flow_run["prefect.infrastructure.status-code"] == codes[run_id], e
        assert flow_run["prefect.infrastructure.identifier"].isdigit(), e
        assert e["follows"] == submitted[flow_run["prefect.resource.id"]]["id"]
        assert related(e, "deployment")[0]["prefect.resource.id"] == \
            f"prefect.deployment.{deployments[run_id]}"
        assert related(e, "flow")[0]["prefect.resource.id"].startswith("prefect.flow.")
        assert related(e, "work-queue")[0]["prefect.resource.id"].startswith(
            "prefect.work-queue.")
        assert related(e, "work-pool")[0]["prefect.resource.id"] == \
            f"prefect.work-pool.{pool_id}"

    # --- the cycle event, and the automation it fired
    cycle = wait_for(lambda: events(prefect_server, ["prefect-cycle.cycle."],
                                    [f"prefect.work-pool.{pool_id}"]),
                     EVENTS_TIMEOUT, "the cycle event")
    assert [e["event"] for e in cycle] == ["prefect-cycle.cycle.failed"]
    payload = cycle[0]["payload"]
    assert payload["exit_code"] == 1
    assert payload["runs_by_state"] == {"COMPLETED": 1, "FAILED": 1, "CRASHED": 2}
    assert payload["pool_paused_at_end"] is True
    assert set(payload["phase_seconds"]) >= {"resume", "worker", "pause"}
    assert cycle[0]["resource"]["prefect-cycle.pool-paused"] == "true"

    fired = wait_for(lambda: events(prefect_server, ["prefect.automation.action."],
                                    [f"prefect.automation.{automation['id']}"]),
                     EVENTS_TIMEOUT, "the automation's action")
    assert {"prefect.automation.action.triggered", "prefect.automation.action.executed"} <= \
        {e["event"] for e in fired}, fired


def test_a_quiet_tick_sends_nothing(prefect_server, prefect, pool, run_cycle):
    pool_id = str(prefect.pool(pool).id)
    result = run_cycle()
    assert result.returncode == 0, result
    assert result.summary["pool_resumed"] is False, result
    time.sleep(PERSISTER_FLUSH)
    assert events(prefect_server, ["prefect-cycle.", "prefect.worker."],
                  [f"prefect.work-pool.{pool_id}"]) == []


def test_switched_off(prefect_server, prefect, pool, deploy, schedule_runs, run_cycle):
    pool_id = str(prefect.pool(pool).id)
    dep, _ = deploy(pool, "flows.py", "fails")
    [bad] = schedule_runs(dep, 1)
    result = run_cycle({"PREFECT_CYCLE_SEND_LOGS": "false", "PREFECT_CYCLE_EMIT_EVENTS": "false"})
    assert result.returncode == 1, result
    # The flow's own lines arrive (Prefect's engine sends them); ours, and
    # the events, would arrive with them or within the persister's flush.
    wait_for(lambda: api(prefect_server, "POST", "/logs/filter",
                         {"logs": {"flow_run_id": {"any_": [bad]}}}),
             EVENTS_TIMEOUT, "the flow's own lines")
    time.sleep(PERSISTER_FLUSH)
    assert run_logs(prefect_server, bad) == []
    assert events(prefect_server, ["prefect-cycle.", "prefect.worker."],
                  [f"prefect.work-pool.{pool_id}"]) == []
