"""Several cycles on several hosts against one pool (issue 20): each cycle in
a UTS namespace of its own (harness `hostname=`, as three pods would be),
with the DEFAULT worker name prefect-cycle-<hostname>.

1. Three at once, 30 cheap runs, limit 5 each: every run executes exactly
   once (its state history on the server: one RUNNING, one COMPLETED), no
   cycle pauses the pool before every other cycle has finished working, and
   the pool is paused when the last one ends.
2. The same with one cycle SIGKILLed mid-run together with its flow
   processes (a pod killed hard): the next cycle, on a fourth host, marks the
   killed cycle's leftover runs CRASHED with the reason, and leaves the live
   cycles' runs alone.

Each test runs on Prefect's default SQLite backend and on PostgreSQL (the
session's `pg_prefect_server`). On SQLite this test once saw one run of 30
launched on two hosts (issue 33): host C claimed it, its flow ran and
COMPLETED, and host B's PENDING proposal, sent after B had re-read the run
SCHEDULED and held 2 s by the busy server, was then ACCEPTed from COMPLETED
(Prefect lets a run leave COMPLETED, FAILED or CRASHED for PENDING: a
rerun). The worker now launches only a claim whose accepted PENDING carries
scheduled_time (copied by the server only from SCHEDULED) and sets the
previous state again otherwise; each run's full state history (timestamps,
transition ids, messages) is in the failure message.

The flow runs' command is a stand-in for `python -m prefect.engine` (FAKE_ENGINE:
stdlib only, ~20 ms of CPU instead of ~2 s for importing Prefect): it
appends "<run id> <hostname>" to a ledger shared by all hosts, proposes
RUNNING, sleeps, proposes COMPLETED through the same REST API. 30 real
engines on 2 shared cores took over 170 s per part; what is under test here
is claiming, pausing and recovery, not the engine (test_worker.py and
test_kubernetes.py run the real one).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import datetime

import pytest

from harness import Cycle, Prefect, kill_like_a_dead_container, wait_for
from k8s_check import _tree

HOSTS = ["host-a", "host-b", "host-c"]
FAKE_ENGINE = r"""
import json, os, socket, sys, time, urllib.request
run_id, api = os.environ["PREFECT__FLOW_RUN_ID"], os.environ["PREFECT_API_URL"]
with open(sys.argv[1], "a") as ledger:
    ledger.write(f"{run_id} {socket.gethostname()}\n")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def propose(type_, name):
    body = json.dumps({"state": {"type": type_, "name": name}}).encode()
    for attempt in range(20):  # a busy SQLite server answers 503 now and then
        try:
            req = urllib.request.Request(f"{api}/flow_runs/{run_id}/set_state", body,
                                         {"Content-Type": "application/json"})
            with opener.open(req, timeout=30) as r:
                status = json.load(r)["status"]
                assert status == "ACCEPT", (type_, status)
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"could not set {type_}")

propose("RUNNING", "Running")
time.sleep(float(sys.argv[2]))
propose("COMPLETED", "Completed")
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def prefect_server(request, prefect_server):
    """The session's server (SQLite, unless PC_E2E_POSTGRES_ALL=1), then its
    PostgreSQL-backed one (conftest.py): conftest's pool and cycle fixtures
    use it in this module."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_prefect_server")
    return prefect_server


@pytest.fixture(scope="module")
def prefect(prefect_server):
    return Prefect(prefect_server)


def _fake_deployment(prefect, pool, tmp_path, seconds):
    """A deployment whose runs execute FAKE_ENGINE; (deployment id, ledger path)."""
    from harness import VENV_PYTHON

    script, ledger = tmp_path / "fake_engine.py", tmp_path / "ledger.txt"
    script.write_text(FAKE_ENGINE)
    ledger.touch()
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello", job_variables={
        "command": f"{VENV_PYTHON} -S {script} {ledger} {seconds}"})
    return deployment_id, ledger


def _history(prefect, run) -> list[str]:
    """The run's states, oldest first: time, type, transition id, message."""
    states = sorted(prefect.call("read_flow_run_states", uuid.UUID(str(run))),
                    key=lambda s: s.timestamp)
    return [f"{s.timestamp} {s.type.value} {s.state_details.transition_id} {s.message or ''}"
            for s in states]


def _ledger(ledger) -> dict[str, list[str]]:
    launches: dict[str, list[str]] = {}
    for line in ledger.read_text().splitlines():
        run_id, host = line.split()
        launches.setdefault(run_id, []).append(host)
    return launches
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)")


def _start(cycle, pool, tmp_path, host, extra=None):
    c = Cycle(cycle.server, tmp_path / host)
    overrides = {"PREFECT_WORKER_FLOW_LIMIT": "5", "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text",
                 "PREFECT_WORKER_NAME": None} | (extra or {})
    proc = c.spawn(pool, overrides, hostname=host)
    cycle.spawned.append(proc)  # stopped at teardown if the test fails
    return proc


def _when(output: str, text: str) -> datetime | None:
    """Time of the first log line containing `text`."""
    for line in output.splitlines():
        if text in line and (m := LOG_TIME.match(line)):
            return datetime.fromisoformat(m[1].replace("Z", "+00:00"))
    return None


class PoolWatcher:
    """Samples the pool's paused flag every 0.2 s in a thread: .paused_at is
    the first time it was seen paused after having been seen resumed."""

    def __init__(self, prefect, pool):
        self.resumed_seen = False
        self.paused_at: float | None = None
        self._done = threading.Event()

        def watch():
            while not self._done.is_set():
                try:
                    paused = prefect.pool(pool).is_paused
                except Exception:  # noqa: BLE001 - a busy server; try again
                    paused = None
                if paused is False:
                    self.resumed_seen = True
                elif paused and self.resumed_seen and self.paused_at is None:
                    self.paused_at = time.monotonic()
                self._done.wait(0.2)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()

    def stop(self):
        self._done.set()
        self._thread.join()


def _worker_phase_end(output: str) -> datetime | None:
    for line in output.splitlines():
        if "[phase=worker] phase " in line and "phase started" not in line:
            return _when(line, "[phase=worker]")
    return None


def _keep_logs(results: dict, tmp_path):
    """Every host's output in tmp_path/<host>.log, for a failure's message."""
    for host, r in results.items():
        (tmp_path / f"{host}.log").write_text(r.stdout + "\n--- stderr\n" + r.stderr)


def _check_pause_order(results: dict, tmp_path):
    """Whoever paused did so after every other cycle had finished its worker
    phase (= had claimed and run everything it would). A cycle still in its
    wait phase is not working: the pauser's own wait ended with no active run
    in the pool. Returns the hosts that paused; the logs go to tmp_path."""
    _keep_logs(results, tmp_path)
    pausers = {h: r for h, r in results.items() if re.search(r'work pool "[^"]+" paused', r.output)}
    assert pausers, "no cycle paused the pool:\n" + "\n".join(map(str, results.values()))
    for host, r in pausers.items():
        paused = _when(r.output, "\" paused")
        for other, o in results.items():
            if re.search(r"native worker done: 0 flow run\(s\) launched", o.output):
                # It came when the others had taken every run (a slow start
                # on a busy machine): nothing of it to wait for.
                continue
            ended = _worker_phase_end(o.output)
            assert ended is not None, o
            assert paused >= ended, (f"{host} paused at {paused} while {other} was still "
                                     f"working (its worker phase ended at {ended}); "
                                     f"logs in {tmp_path}")
    return sorted(pausers)


def test_three_hosts_default_names_each_run_once_last_one_pauses(prefect, pool, cycle,
                                                                  tmp_path):
    deployment_id, ledger = _fake_deployment(prefect, pool, tmp_path, 0.5)
    ids = prefect.schedule_runs(deployment_id, 30)
    watcher = PoolWatcher(prefect, pool)
    procs = {h: _start(cycle, pool, tmp_path, h) for h in HOSTS}
    results = {h: p.finish(timeout=240) for h, p in procs.items()}
    ended = time.monotonic()
    watcher.stop()

    for host, r in results.items():
        (tmp_path / f"{host}.log").write_text(r.stdout + "\n--- stderr\n" + r.stderr)
    launches = _ledger(ledger)
    twice = {run: (hosts, _history(prefect, run)) for run, hosts in launches.items()
             if len(hosts) > 1}
    assert not twice, f"launched more than once: {twice}; logs in {tmp_path}"
    for r in results.values():
        assert r.returncode == 0, r
        assert r.summary["worker_name"] in {f"prefect-cycle-{h}" for h in HOSTS}, r.summary
    assert sorted(launches) == sorted(ids), launches
    hosts_used = {}
    for run in ids:
        # Executed once: one RUNNING, COMPLETED at the end. A claim accepted
        # after the run had COMPLETED (PENDING without scheduled_time) is
        # followed by the COMPLETED its worker set again.
        history = prefect.states(run)
        assert history.count("RUNNING") == 1 and history[-1] == "COMPLETED", \
            (run, _history(prefect, run))
        host = prefect.run(run).infrastructure_pid.split(":")[0]
        hosts_used[host] = hosts_used.get(host, 0) + 1
    assert set(hosts_used) <= set(HOSTS), hosts_used
    pausers = _check_pause_order(results, tmp_path)
    # Seen from outside: the pool was not paused before the last cycle ended
    # its work (the watcher's first "paused" comes at the very end).
    assert watcher.paused_at is not None and ended - watcher.paused_at < 5, \
        (watcher.paused_at, ended)
    assert prefect.pool(pool).is_paused
    given_back = sum(r.output.count("not started: the server accepted our PENDING")
                     for r in results.values())
    print(f"durations { {h: round(r.duration, 1) for h, r in results.items()} }; "
          f"runs per host {hosts_used}; late claims given back {given_back}; "
          f"paused by {pausers}; "
          f"left resumed for: { {h: r.summary.get('pool_left_resumed_for') for h, r in results.items()} }")


def test_a_host_killed_mid_run_is_recovered_by_the_next_host(prefect, pool, cycle, tmp_path):
    fast = {"PREFECT_WORKER_HEARTBEAT_SECONDS": "2"}
    deployment_id, ledger = _fake_deployment(prefect, pool, tmp_path, 8)
    ids = prefect.schedule_runs(deployment_id, 30)
    procs = {h: _start(cycle, pool, tmp_path, h, fast) for h in HOSTS}

    def a_busy_host():
        # The victim is whichever host has two runs RUNNING first: on
        # PostgreSQL a host whose poll met its neighbours' row locks (FOR
        # UPDATE SKIP LOCKED) can end with nothing to do, so no fixed host is
        # sure to be busy.
        running = {}
        for r in prefect.pool_runs(pool):
            host = (r.infrastructure_pid or "").split(":")[0]
            if host in procs and r.state.type.value == "RUNNING":
                running[host] = running.get(host, 0) + 1
        busy = [h for h, n in running.items() if n >= 2]
        return busy[0] if busy else None

    victim = wait_for(a_busy_host, 90, "a host with two runs RUNNING")
    # The victim dies as a pod killed hard: the cycle and every flow process
    # at once (frozen first so that no flow reports its own broken pipe).
    b = procs.pop(victim)
    kill_like_a_dead_container(b.popen, _tree(b.pid)[1:])
    killed_at = time.monotonic()

    def claimed_by_victim(r) -> bool:
        # Its pid or its state's message says so; or, for a run RUNNING
        # before its infrastructure_pid was written, its PENDING's message.
        if victim in (r.infrastructure_pid or "") + (r.state.message or ""):
            return True
        return any(" PENDING " in line and f"prefect-cycle-{victim}" in line
                   for line in _history(prefect, r.id))

    leftovers = [r for r in prefect.pool_runs(pool)
                 if r.state.type.value in ("PENDING", "RUNNING") and claimed_by_victim(r)]
    b_claimed = {str(r.id) for r in leftovers}
    assert b_claimed, f"{victim} had no run left PENDING/RUNNING"

    # The victim's worker row is silent for more than three intervals (2 s)
    # as the server sees it: a busy SQLite server applies a heartbeat sent
    # just before the kill seconds later, so a fixed wait is not enough.
    def victim_silent():
        from datetime import timezone
        rows = {w.name: w for w in prefect.call("read_workers_for_work_pool", pool)}
        row = rows.get(f"prefect-cycle-{victim}")
        if row is None or row.last_heartbeat_time is None:
            return True
        age = datetime.now(timezone.utc) - row.last_heartbeat_time
        return age.total_seconds() > 3 * 2 + 1
    time.sleep(max(0.0, killed_at + 8 - time.monotonic()))
    wait_for(victim_silent, 60, f"the server to see {victim}'s worker row silent")
    d = Cycle(cycle.server, tmp_path / "host-d").run(
        pool, {"PREFECT_WORKER_FLOW_LIMIT": "5", "PREFECT_WORKER_NAME": None,
               "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text"} | fast,
        timeout=240, hostname="host-d")
    results = {h: p.finish(timeout=240) for h, p in procs.items()} | {"host-d": d}
    _keep_logs(results, tmp_path)  # before any assertion: a failure points to them

    for host, r in results.items():
        assert r.returncode in (0, 1), r  # 1: it accounted the victim's crashed runs
    recovered_by = sorted(h for h, r in results.items() if "stale flow run" in r.output)
    assert "stale flow run" in d.output, (
        f"host-d's output has no recovery line; hosts whose output has one: {recovered_by}; "
        f"logs in {tmp_path}")
    launches = _ledger(ledger)
    assert all(len(h) == 1 for h in launches.values()), launches
    for run in ids:
        history = prefect.states(run)
        state = prefect.run(run).state
        assert history.count("RUNNING") <= 1, (run, _history(prefect, run))
        if run in b_claimed:
            assert state.type.value == "CRASHED", (run, history, state)
            assert state.message.startswith("prefect-cycle found this flow run stale: "), state
            assert (f'prefect-cycle worker "prefect-cycle-{victim}", which claimed it, stopped '
                    'heartbeating') in state.message, state.message
        else:
            assert state.type.value == "COMPLETED", (run, history, state)
            assert history.count("RUNNING") == 1, (run, history)
    _check_pause_order(results, tmp_path)
    assert prefect.pool(pool).is_paused
    print(f"durations { {h: round(r.duration, 1) for h, r in results.items()} }; "
          f"{victim} left {len(b_claimed)} run(s); exit codes "
          f"{ {h: r.returncode for h, r in results.items()} }")


def test_a_claim_that_arrives_after_the_run_ended_elsewhere_is_given_back(prefect, pool, cycle,
                                                                           prefect_server,
                                                                           tmp_path):
    """The double launch of issue 33, made to happen: host B's PENDING
    proposal is held 15 s by a proxy (as a busy SQLite server held one 2 s)
    while host A claims, runs and completes the run. The server then ACCEPTs
    B's PENDING from COMPLETED, on either backend; B must not launch it and
    must set COMPLETED again."""
    from fault_proxy import FaultProxy, Rule

    deployment_id, ledger = _fake_deployment(prefect, pool, tmp_path, 0.5)
    [run] = prefect.schedule_runs(deployment_id, 1)
    proxy = FaultProxy(prefect_server.api_url.removesuffix("/api")).start()
    try:
        held = proxy.add(Rule("POST", r"/flow_runs/[^/]+/set_state$", "delay", seconds=15,
                              body_contains='"PENDING"'))
        b = _start(cycle, pool, tmp_path, "host-b", {"PREFECT_API_URL": proxy.api_url,
                                                    "PREFECT_API_REQUEST_TIMEOUT": "60"})
        wait_for(lambda: held.seen >= 1, 90, "host B's PENDING proposal at the proxy")
        assert prefect.state_type(run) == "SCHEDULED"
        a = Cycle(cycle.server, tmp_path / "host-a").run(
            pool, {"PREFECT_WORKER_NAME": None, "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text"},
            timeout=120, hostname="host-a")
        assert a.returncode == 0, a
        # A's run ended before B's proposal reached the server.
        assert held.fired == 1 and prefect.state_type(run) == "COMPLETED", \
            (held, _history(prefect, run), a)
        b_result = b.finish(timeout=120)
    finally:
        proxy.stop()
    (tmp_path / "host-b.log").write_text(b_result.stdout + "\n--- stderr\n" + b_result.stderr)
    history = _history(prefect, run)
    assert _ledger(ledger) == {run: ["host-a"]}, (history, b_result)
    assert "not started: the server accepted our PENDING proposal" in b_result.output, \
        (history, b_result)
    assert b_result.returncode == 0, b_result
    types = prefect.states(run)
    # B's PENDING was accepted from COMPLETED (the server's doing), then
    # COMPLETED again (B's): one RUNNING, COMPLETED at the end.
    assert types.count("PENDING") == 2 and types.count("RUNNING") == 1, history
    assert types[-1] == "COMPLETED", history
    assert prefect.pool(pool).is_paused
    print("history:\n  " + "\n  ".join(history))
