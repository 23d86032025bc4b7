"""On-demand ticks (issue 35): `prefect-cycle on-demand` sets up a Webhook
block and an automation on the real session server (its triggers and actions
services are on: `prefect server start` runs every service by default), and
the server itself then calls a stand-in for the platform's API on
127.0.0.1 -- the HTTP server below, which records every request and, like
Railway, starts a real cycle unless one is still running.

What is measured here goes into README "On-demand ticks": the time from a
run's creation to the stand-in's request, and to the flow's first log line.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import k8s_check
from harness import wait_for

TOKEN = "tok-" + uuid.uuid4().hex  # unique: a search for it in any output is exact
# Bounds (seconds) from a run's creation; measured values are printed with -s.
REQUEST_BOUND = 20
RAILWAY_RESPONSE = {"data": {"deploymentInstanceExecutionCreate": True}}


class PlatformStandIn:
    """An HTTP server on 127.0.0.1 that records each request (monotonic time,
    method, path, headers, body) and answers 200 (Railway) or 201 with the
    Job (Kubernetes). `on_request(record)` runs for each one, in the
    handler's thread."""

    def __init__(self, on_request=None):
        self.requests: list[dict] = []
        self.on_request = on_request
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                record = {"at": time.monotonic(), "method": "POST", "path": self.path,
                          "headers": dict(self.headers), "body": body}
                stand_in.requests.append(record)
                if "/apis/batch/v1/" in self.path:
                    status, answer = 201, body.encode()
                else:
                    status, answer = 200, json.dumps(RAILWAY_RESPONSE).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                if stand_in.on_request:
                    stand_in.on_request(record)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    s = PlatformStandIn()
    yield s
    s.close()


def api(server, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.api_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def automations_named(server, name: str) -> list[dict]:
    return api(server, "POST", "/automations/filter",
               {"automations": {"name": {"any_": [name]}}})


def on_demand(cycle, pool, *args, token=TOKEN):
    return cycle.run(pool, {"PREFECT_CYCLE_PLATFORM_TOKEN": token}, ["on-demand", *args],
                     timeout=60)


DEBOUNCE = 10  # the command's default


def railway_args(stand_in, debounce=DEBOUNCE):
    return ["--platform", "railway", "--railway-service-instance-id", "si-123",
            "--railway-api-url", stand_in.url + "/graphql/v2", "--debounce", str(debounce)]


def schedule_at_once(prefect, deployment_id, n):
    """n runs due now, created by n concurrent API calls (a burst of clicks)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(prefect.schedule_runs, deployment_id, 1) for _ in range(n)]
        return [f.result()[0] for f in futures]


def pool_events(prefect, pool) -> dict[str, int]:
    """How many Scheduled and Late events the pool's runs had (the trigger's)."""
    pool_id = str(prefect.pool(pool).id)
    counts = {}
    for name in ("prefect.flow-run.Scheduled", "prefect.flow-run.Late"):
        answer = api(prefect.server, "POST", "/events/filter", {
            "filter": {"event": {"name": [name]},
                       "related": {"id": [f"prefect.work-pool.{pool_id}"]}},
            "limit": 1})
        counts[name] = answer["total"]
    return counts


def assert_no_token(*texts):
    for text in texts:
        assert TOKEN not in text


def test_webhook_block_type_is_registered(prefect_server):
    block_type = api(prefect_server, "GET", "/block_types/slug/webhook")
    assert block_type["slug"] == "webhook"


def test_railway_set_up_is_idempotent_and_one_run_sends_the_mutation(
        cycle, prefect, prefect_server, pool, stand_in, deploy):
    first = on_demand(cycle, pool, *railway_args(stand_in))
    assert first.returncode == 0, first
    assert "block webhook/prefect-cycle-on-demand-" in first.stdout, first
    assert first.stdout.count(": created") == 2, first
    again = on_demand(cycle, pool, *railway_args(stand_in))
    assert again.returncode == 0, again
    assert again.stdout.count(": unchanged") == 2, again
    assert_no_token(first.output, again.output)

    [automation] = automations_named(prefect_server, f"prefect-cycle on-demand: {pool}")
    assert automation["enabled"] is True
    assert sorted(automation["trigger"]["expect"]) == ["prefect.flow-run.Late",
                                                       "prefect.flow-run.Scheduled"]
    doctor = cycle.run(pool, None, ["doctor"], timeout=60)
    assert "exists and is enabled" in doctor.output, doctor

    deployment_id, _ = deploy(pool, "flows.py", "hello")
    created = time.monotonic()
    prefect.schedule_runs(deployment_id, 1)
    wait_for(lambda: stand_in.requests, REQUEST_BOUND, "the stand-in to get the mutation")
    latency = stand_in.requests[0]["at"] - created
    print(f"\non-demand: request {latency:.2f}s after the run's creation")
    [request] = stand_in.requests
    assert request["path"] == "/graphql/v2"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "query": "mutation($id: String!) { deploymentInstanceExecutionCreate(input: "
                 "{serviceInstanceId: $id}) }",
        "variables": {"id": "si-123"},
    }

    # The server's record of the call: an executed action, no token in it.
    def executed():
        events = api(prefect_server, "POST", "/events/filter", {
            "filter": {"event": {"prefix": ["prefect.automation.action"]},
                       "any_resource": {"id": [f"prefect.automation.{automation['id']}"]}},
            "limit": 50})
        names = [e["event"] for e in events["events"]]
        return "prefect.automation.action.executed" in names and events
    events = wait_for(executed, 30, "the action.executed event")
    assert_no_token(json.dumps(events), prefect_server.log_tail(10**7))

    config = cycle.run(pool, {"PREFECT_CYCLE_PLATFORM_TOKEN": TOKEN}, ["config"], timeout=30)
    assert_no_token(config.output)

    removed = on_demand(cycle, pool, "--remove")
    assert removed.returncode == 0, removed
    assert removed.stdout.count(": deleted") == 2, removed
    assert automations_named(prefect_server, f"prefect-cycle on-demand: {pool}") == []


def test_twenty_runs_at_once_send_one_request_per_debounce_window(
        cycle, prefect, pool, deploy, stand_in):
    """20 runs created by concurrent calls: one request per debounce window
    their Scheduled events span (one when they come within 10 s). Counted
    until the runs could go Late (the server marks them 15 s after their
    time), which would rightly start another cycle."""
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    assert on_demand(cycle, pool, *railway_args(stand_in)).returncode == 0
    created = time.monotonic()
    schedule_at_once(prefect, deployment_id, 20)
    burst = time.monotonic() - created
    wait_for(lambda: stand_in.requests, REQUEST_BOUND, "the stand-in's first request")
    time.sleep(3)  # the last events' processing
    in_burst = [r for r in stand_in.requests if r["at"] - created <= burst + 3]
    windows = 1 + int(burst // DEBOUNCE)
    print(f"\non-demand: 20 runs created in {burst:.2f}s -> {len(in_burst)} request(s) at "
          f"{[round(r['at'] - created, 1) for r in in_burst]} s (bound {windows})")
    assert 1 <= len(in_burst) <= windows
    on_demand(cycle, pool, "--remove")


def test_run_to_first_line_latency(cycle, prefect, pool, deploy):
    """Run -> request -> a real cycle -> the flow's first log line."""
    cycles = []
    stand_in = PlatformStandIn(lambda record: cycles.append(cycle.spawn(pool)))
    try:
        deployment_id, _ = deploy(pool, "flows.py", "hello")
        assert on_demand(cycle, pool, *railway_args(stand_in)).returncode == 0
        created_wall = dt.datetime.now(dt.timezone.utc)
        [run_id] = prefect.schedule_runs(deployment_id, 1)
        prefect.wait_for_state(run_id, {"COMPLETED"}, timeout=120)
        # RUNNING is set by the engine just before the flow function's first line.
        started = prefect.run(run_id).start_time
        latency = (started - created_wall).total_seconds()
        print(f"\non-demand: run created -> flow running {latency:.2f}s")
        assert 0 < latency < 60
        assert len(cycles) == 1
        assert cycles[0].finish(timeout=60).returncode == 0
    finally:
        stand_in.close()
        on_demand(cycle, pool, "--remove")


def test_a_run_a_day_ahead_leads_to_one_idle_tick(cycle, prefect, pool, deploy):
    """Prefect's Scheduled event carries no scheduled time, so the trigger
    cannot tell a run for tomorrow from one for now: it fires once, and the
    cycle it starts is idle and leaves the run alone."""
    cycles = []
    stand_in = PlatformStandIn(lambda record: cycles.append(cycle.spawn(pool)))
    try:
        deployment_id, _ = deploy(pool, "flows.py", "hello")
        assert on_demand(cycle, pool, *railway_args(stand_in)).returncode == 0
        tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        [run_id] = prefect.schedule_runs(deployment_id, 1, start=tomorrow)
        wait_for(lambda: stand_in.requests, REQUEST_BOUND, "the stand-in's request")
        result = cycles[0].finish(timeout=60)
        assert result.returncode == 0, result
        assert result.summary is not None and not result.summary.get("runs"), result
        time.sleep(12)
        assert len(stand_in.requests) == 1
        assert prefect.state_type(run_id) == "SCHEDULED"
    finally:
        stand_in.close()
        on_demand(cycle, pool, "--remove")


def test_kubernetes_posts_the_cronjobs_job(cycle, prefect, pool, deploy, stand_in, tmp_path):
    manifest = yaml.safe_load((k8s_check.MANIFEST_DIR / "cronjob.yaml").read_text())
    manifest["metadata"]["uid"] = str(uuid.uuid4())  # as `kubectl get -o json` has it
    cronjob_file = tmp_path / "cronjob.json"
    cronjob_file.write_text(json.dumps(manifest))
    args = ["--platform", "kubernetes", "--k8s-api-server", stand_in.url,
            "--k8s-namespace", "prefect", "--k8s-cronjob-file", str(cronjob_file)]
    dry = on_demand(cycle, pool, *args, "--dry-run")
    assert dry.returncode == 0, dry
    assert "would be created" in dry.stdout and '"Authorization":"***"' in dry.stdout, dry
    assert_no_token(dry.output)
    assert on_demand(cycle, pool, *args).returncode == 0

    deployment_id, _ = deploy(pool, "flows.py", "hello")
    prefect.schedule_runs(deployment_id, 1)
    wait_for(lambda: stand_in.requests, REQUEST_BOUND, "the stand-in to get the Job")
    [request] = stand_in.requests
    assert request["path"] == "/apis/batch/v1/namespaces/prefect/jobs"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    job = json.loads(request["body"])
    template = manifest["spec"]["jobTemplate"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["spec"] == template["spec"]
    assert job["metadata"]["generateName"] == manifest["metadata"]["name"] + "-"
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": manifest["metadata"]["name"],
        "uid": manifest["metadata"]["uid"], "controller": True}]
    k8s_check.ensure_lint_venv()
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    assert k8s_check.run_schema_check([job_file]) == []
    on_demand(cycle, pool, "--remove")
