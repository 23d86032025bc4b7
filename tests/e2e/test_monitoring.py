"""Monitoring end to end (issue 21): dead-man's-switch pings against a local
HTTP recorder, metrics pushed to a real Prometheus Pushgateway (Debian's
prometheus-pushgateway, started here on 127.0.0.1), their time bounds, and the
ping URL's token kept out of every log line and summary."""

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import free_port, wait_for

# The documented bounds (src/monitor/monitor.hpp): the start ping at most 3 s,
# the final ping and the push together at most 4 s.
START_BOUND = 3.0
END_BOUND = 4.0
SLACK = 2.0  # process start, a busy 2-core machine


class Recorder:
    """An HTTP endpoint on 127.0.0.1 that records every request (method, path,
    body, arrival time, and what `probe()` returned at that moment) and
    answers `status`, or never answers before teardown when status is None."""

    def __init__(self, status=200, probe=None):
        self.status = status
        self.probe = probe
        self.requests = []
        self.release = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                seen = recorder.probe() if recorder.probe else None
                recorder.requests.append(
                    {"method": self.command, "path": self.path, "body": body,
                     "time": time.monotonic(), "probe": seen})
                if recorder.status is None:
                    recorder.release.wait(30)
                    return
                self.send_response(recorder.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = do_PUT = do_HEAD = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self):
        return [(r["method"], r["path"]) for r in self.requests]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    made = []

    def make(status=200, probe=None):
        r = Recorder(status, probe)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def pushgateway():
    """A real Pushgateway on 127.0.0.1:<free port>, in memory; its base URL."""
    binary = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
    if not shutil.which(binary):
        pytest.fail("prometheus-pushgateway is not installed: apt-get install "
                    "prometheus-pushgateway (scripts/setup.sh installs it)", pytrace=False)
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 20, "the Pushgateway to be ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def pushed_series(pushgateway_url, pool):
    """{(metric name, tuple of sorted extra labels): value} of `pool`'s group."""
    text = urllib.request.urlopen(f"{pushgateway_url}/metrics", timeout=5).read().decode()
    series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("prefect_cycle_") or sample.labels.get("pool") != pool:
                continue
            assert sample.labels["job"] == "prefect_cycle", sample
            extra = tuple(sorted((k, v) for k, v in sample.labels.items()
                                 if k not in ("job", "pool", "instance")))
            series[(sample.name, extra)] = sample.value
    return series


def pool_is_paused(api_url, pool):
    with urllib.request.urlopen(f"{api_url}/work_pools/{pool}", timeout=5) as response:
        return json.load(response)["is_paused"]


def assert_token_hidden(result, token):
    assert token not in result.output, result
    assert token not in json.dumps(result.summary), result.summary


def test_pushgateway_series_and_pings_after_a_failed_then_an_empty_cycle(
        pool, deploy, schedule_runs, run_cycle, pushgateway, recorder):
    ok_id, _ = deploy(pool, "flows.py", "hello", name="ok")
    bad_id, _ = deploy(pool, "flows.py", "fails", name="bad")
    schedule_runs(ok_id, 1)
    schedule_runs(bad_id, 1)
    pings = recorder()
    token = str(uuid.uuid4())
    env = {"PREFECT_CYCLE_PUSHGATEWAY_URL": pushgateway,
           "PREFECT_CYCLE_PING_URL": f"{pings.url}/ping/{token}"}

    before = time.time()
    first = run_cycle(env, timeout=180)

    assert first.returncode == 1, first
    series = pushed_series(pushgateway, pool)
    assert series[("prefect_cycle_flow_runs", (("state", "COMPLETED"),))] == 1
    assert series[("prefect_cycle_flow_runs", (("state", "FAILED"),))] == 1
    assert series[("prefect_cycle_flow_runs", (("state", "CRASHED"),))] == 0
    assert series[("prefect_cycle_exit_code", ())] == 1
    assert series[("prefect_cycle_pool_paused", ())] == 1
    assert ("prefect_cycle_last_success_timestamp_seconds", ()) not in series
    start = series[("prefect_cycle_last_start_timestamp_seconds", ())]
    end = series[("prefect_cycle_last_end_timestamp_seconds", ())]
    assert before - 1 <= start <= end <= time.time() + 1
    assert series[("prefect_cycle_phase_duration_seconds", (("phase", "worker"),))] > 0
    # healthchecks.io: start, then the exit status; one run id for both.
    assert [(m, p.split("?")[0]) for m, p in pings.paths()] == [
        ("GET", f"/ping/{token}/start"), ("POST", f"/ping/{token}/1")], pings.paths()
    rid = pings.requests[0]["path"].split("?rid=")[1]
    assert pings.requests[1]["path"].endswith(f"?rid={rid}")
    assert pings.requests[1]["body"].startswith("cycle finished: exit 1 (runs_failed)")
    assert '"exit_code":1' in pings.requests[1]["body"]
    assert_token_hidden(first, token)

    second = run_cycle(env, timeout=120)  # nothing due now

    assert second.returncode == 0, second
    series = pushed_series(pushgateway, pool)
    # PUT replaced the group: the counts are this cycle's, not added up.
    assert series[("prefect_cycle_flow_runs", (("state", "COMPLETED"),))] == 0
    assert series[("prefect_cycle_flow_runs", (("state", "FAILED"),))] == 0
    assert series[("prefect_cycle_exit_code", ())] == 0
    success = series[("prefect_cycle_last_success_timestamp_seconds", ())]
    assert success == series[("prefect_cycle_last_end_timestamp_seconds", ())]
    assert success > end
    assert [(m, p.split("?")[0]) for m, p in pings.paths()[2:]] == [
        ("GET", f"/ping/{token}/start"), ("POST", f"/ping/{token}")], pings.paths()
    assert_token_hidden(second, token)


def test_sigterm_pings_143_after_the_pause(prefect, prefect_server, pool, deploy, schedule_runs,
                                          start_cycle, recorder):
    from prefect.states import Running

    deployment_id, _ = deploy(pool, "flows.py", "hello")
    [run] = schedule_runs(deployment_id, 1)
    prefect.call("set_flow_run_state", uuid.UUID(run), Running(), force=True)
    pings = recorder(probe=lambda: pool_is_paused(prefect_server.api_url, pool))
    token = str(uuid.uuid4())

    # Text lines: the order check below quotes the pool name as they do.
    proc = start_cycle({"PREFECT_CYCLE_PING_URL": f"{pings.url}/{token}",
                        "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text"})
    proc.wait_for_output("[phase=wait] phase started", timeout=60)
    assert pool_is_paused(prefect_server.api_url, pool) is False  # resumed
    proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=60)

    assert result.returncode == 143, result
    assert [(m, p.split("?")[0]) for m, p in pings.paths()] == [
        ("GET", f"/{token}/start"), ("POST", f"/{token}/143")], pings.paths()
    # The start ping saw the pool paused (before the resume), the final one
    # saw it paused again after it was resumed: it was sent after the pause.
    assert [r["probe"] for r in pings.requests] == [True, True]
    sent = "monitoring: exit-status ping 143 sent"
    log = next(s for s in (result.stderr, result.stdout) if sent in s)  # info lines' stream
    assert log.index(f'work pool "{pool}" paused') < log.index(sent), result
    assert_token_hidden(result, token)


def test_hanging_or_failing_endpoints_delay_by_at_most_the_bound(pool, run_cycle, recorder):
    baseline = run_cycle(timeout=60)
    assert baseline.returncode == 0, baseline
    token = str(uuid.uuid4())

    hanging = recorder(status=None)
    hung = run_cycle({"PREFECT_CYCLE_PING_URL": f"{hanging.url}/{token}",
                      "PREFECT_CYCLE_PUSHGATEWAY_URL": hanging.url}, timeout=60)

    assert hung.returncode == 0, hung
    delay = hung.duration - baseline.duration
    assert START_BOUND + END_BOUND - 2 <= delay <= START_BOUND + END_BOUND + SLACK, hung
    assert "monitoring: start ping to http://127.0.0.1" in hung.output
    assert "the cycle's outcome is unchanged" in hung.output
    assert hung.summary["exit_code"] == 0
    assert_token_hidden(hung, token)

    failing = recorder(status=500)
    failed = run_cycle({"PREFECT_CYCLE_PING_URL": f"{failing.url}/{token}",
                        "PREFECT_CYCLE_PUSHGATEWAY_URL": failing.url}, timeout=60)

    assert failed.returncode == 0, failed
    assert failed.duration - baseline.duration <= START_BOUND + END_BOUND + SLACK, failed
    # Three attempts each: start ping, final ping, push.
    assert [p.split("?")[0] for _, p in failing.paths()] == (
        [f"/{token}/start"] * 3 + [f"/{token}"] * 3 + [f"/metrics/job/prefect_cycle/pool/{pool}"] * 3)
    assert "HTTP 500" in failed.output
    assert_token_hidden(failed, token)


def test_doctor_checks_both_without_signalling(run_cycle, pushgateway, recorder):
    pings = recorder()
    token = str(uuid.uuid4())

    result = run_cycle({"PREFECT_CYCLE_PING_URL": f"{pings.url}/{token}",
                        "PREFECT_CYCLE_PUSHGATEWAY_URL": pushgateway},
                       args=("doctor",), pool="any-pool", timeout=120)

    assert "\u2713 monitor.ping: ping host 127.0.0.1:" in result.stdout, result
    assert "\u2713 monitor.pushgateway: GET " + pushgateway + "/-/ready answered HTTP 200" \
        in result.stdout, result
    assert pings.requests == []  # DNS and TCP only: no ping was sent
    assert_token_hidden(result, token)


def test_config_shows_the_ping_url_as_stars(run_cycle):
    token = str(uuid.uuid4())
    result = run_cycle({"PREFECT_CYCLE_PING_URL": f"https://hc-ping.com/{token}",
                        "PREFECT_CYCLE_PUSHGATEWAY_URL": "http://prom:s3cr3t@pg:9091"},
                       args=("config",), pool="any-pool")

    assert result.returncode == 0, result
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["PREFECT_CYCLE_PING_URL"].split()[1] == "***"
    assert "http://prom:***@pg:9091" in lines["PREFECT_CYCLE_PUSHGATEWAY_URL"]
    assert "pool=any-pool" in lines["PREFECT_CYCLE_PUSHGATEWAY_GROUPING"]
    assert token not in result.output and "s3cr3t" not in result.output
