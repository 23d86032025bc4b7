#!/usr/bin/env python3
"""prefect-cycle against Prefect's own worker, side by side in one run (issue 7).

Started by scripts/bench.sh. For each backend of BENCH_BACKENDS (sqlite, postgres:
issue 18) starts a local Prefect server on it (tests/e2e/harness.py; PostgreSQL from
tests/e2e/pg_server.py), then for each scenario runs both contenders alternately,
BENCH_REPEATS times each, stops the server, and goes on with the next backend. Prints
a table of median [min..max] with the ratio baseline / prefect-cycle, and with several
backends a table of them side by side (wall, requests, HTTP 503 answers).

  baseline      `prefect work-pool resume P`, `prefect worker start --pool P --type
                process --run-once --limit L --prefetch-seconds S` (looped until
                nothing is due, see below), bench/wait_active.py (a Python loop
                counting the pool's active runs with Prefect's client, 1 s poll),
                `prefect work-pool pause P`.
  prefect-cycle `prefect-cycle run` with the same pool, limit and prefetch.
  prefect-cycle-warm  the same with PREFECT_CYCLE_WARM_START=true (issue 19): each
                flow run forked from one preloaded Python, the launcher; in
                scenario 6 also PREFECT_CYCLE_PRELOAD_MODULES=bench_heavy.
  floor         (scenario 3 only) the same command spawned once per run by
                `xargs -P L`.
  floor-claim   (scenario 3 only) the same, each job first proposing PENDING
                through the API: the least any worker must ask of the server.

Each contender run gets a fresh paused pool with its own deployment, so no
worker row of the other contender is in the pool.

Scenarios: 1 empty pool; 2 twenty due runs of tests/e2e/flows/flows.py:hello,
limit 5; 3 two hundred due runs whose deployment `command` is an `sh -c 'curl ..'`
that sets the run COMPLETED through the API, limit 20; 4 (measured in 2 and 3)
time from the last run's end_time to the exit of the cycle; 5 twenty runs of that
command, limit 20 (all claimed at once: where round trips show); 6 (issue 19) twenty
runs of bench/heavy/heavy_flows.py:heavy, limit 5, a flow whose body imports
bench/heavy/bench_heavy.py, which takes about a second to import (69 standard-library
modules and a pure-Python prime sieve: CPU, no sleep). In scenario 6 bench/heavy is on
the PYTHONPATH of every contender, so of the flow runs and the warm launcher too.

Contenders (--contenders / BENCH_CONTENDERS, a comma list; the floors run in
scenario 3 only): by default baseline and prefect-cycle everywhere, plus
prefect-cycle-warm in scenarios 2 and 6, plus the floors in 3. They alternate:
baseline, prefect-cycle, prefect-cycle-warm in even repetitions, reversed in odd ones.

Latency (BENCH_LATENCY_MS=0,100): for each value other than 0 the contenders (and
the flow runs they start) reach the server through tests/e2e/fault_proxy.py holding
every answer that long, as Prefect Cloud or a server in another region would; the
driver's own setup and checks go direct. Each (backend, latency) is reported as its
own column, e.g. "SQLite +100 ms".

Measurements (see docs/benchmarks.md): wall time by the driver (spawn to exit);
CPU = user+sys of each controller process itself: wait4's rusage minus the
cutime/cstime read from /proc/PID/stat while it is a zombie (waitid WNOWAIT),
so the flow processes it reaped are excluded; peak RSS = VmHWM of the controller process
sampled every 5 ms until it exits; HTTP requests = prefect-cycle's debug lines, and for the baseline an
httpx hook (bench/httplog/sitecustomize.py) in the controller processes.

Flow processes' total PSS (scenarios other than 1): every PSS_INTERVAL (0.15 s) the
driver walks the descendants of the contender's process (by the ppid of /proc/*/stat)
and reads each one's `Pss:` line of /proc/PID/smaps_rollup (kB), keeping per pid the
largest value seen. Summed are, per flow process, those peaks:
  - prefect-cycle and prefect-cycle-warm: the pids of its "started: ... (pid N" log
    lines, i.e. the `python -m prefect.engine` processes it spawned (cold) or the flow
    processes forked from the launcher and re-parented to it (warm). Not summed: the
    launcher itself (reported as its own row, "the launcher's peak PSS", from its
    "launcher ready (pid N)" line) and the launcher's short-lived intermediate forks.
  - baseline: the descendants of its `prefect worker start` processes whose command
    line contains `prefect.engine` (the flow runs the process worker starts).
PSS divides each shared page among the processes mapping it, so pages a warm flow
process shares with the launcher and its siblings count only in part; the sum of
peaks taken at different moments is an upper bound of the flows' PSS at any moment.
A flow process that lives less than one sampling interval can be missed: the
"flow processes sampled" row says how many were seen (a note in "Every run" when
fewer than were started).

Per-run profile (prefect-cycle contenders, from their debug logs; run_profile): per
flow run the seconds from its "started:" line to its first output line, to Prefect's
"Beginning flow run" and "Finished in state" lines, and to its exit; median
[min..max] over every run of the scenario, printed under its table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from fault_proxy import FaultProxy  # noqa: E402
from harness import VENV_BIN, Prefect, PrefectServer, binary_path  # noqa: E402

BENCH = ROOT / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Sets the run's final state through the API, as a flow would; no Python.
CHEAP_COMMAND = (
    "sh -c 'curl -sf --retry 8 -X POST \"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{\\\"state\\\":{\\\"type\\\":\\\"COMPLETED\\\"},\\\"force\\\":true}\" >/dev/null'"
)

# What any worker must at least do per run besides spawning it: propose PENDING
# (the claim; Prefect's orchestration runs on it). Prefixed to the command for
# the "floor + claim" contender.
CLAIM_COMMAND = (
    "curl -sf --retry 8 -X POST \"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{\\\"state\\\":{\\\"type\\\":\\\"PENDING\\\"}}\" >/dev/null; "
)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REAPED_LINE = re.compile(r"^(\S+Z) .*\] process .*; flow run [A-Z]+$", re.M)
RETRY_LINE = re.compile(r"; retry \d+ of \d+ in ([0-9.]+) s")
STARTED_LINE = re.compile(r"^(\S+Z) .*\[([^\]]*)\] started: \S+ \(pid (\d+)", re.M)
LAUNCHER_LINE = re.compile(r"warm start: launcher ready \(pid (\d+)\)")
HEAVY_DIR = ROOT / "bench" / "heavy"  # scenario 6's flow and its heavy module
HEAVY_MODULE = "bench_heavy"
REQUEST_LINE = re.compile(r"\b(GET|POST|PATCH|PUT|DELETE|HEAD) (\S+) -> (\S+) \((\d+) ms\)")


# --------------------------------------------------------------------------- processes

@dataclass
class Proc:
    """One measured process."""

    argv: list[str]
    wall: float = 0.0
    start: float = 0.0  # time.time() at spawn
    end: float = 0.0  # time.time() at exit
    cpu_self: float = 0.0  # utime + stime of the process itself
    cpu_children: float = 0.0  # cutime + cstime: children it reaped (flows)
    peak_rss_kib: int = 0
    peak_anon_kib: int = 0  # largest RssAnon seen: the process's own memory, no shared libraries
    returncode: int | None = None
    pid: int = 0
    timed_out: bool = False
    # with measured(..., pss=True): pid -> (peak PSS kB, cmdline, ppid) of every
    # descendant seen, sampled every PSS_INTERVAL s
    descendants: dict = field(default_factory=dict)


def _read_mem(pid: int) -> tuple[int, int]:
    """(VmHWM, RssAnon) in KiB; zeros once the process is gone."""
    hwm = anon = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return hwm, anon


PSS_INTERVAL = 0.15  # seconds between two walks of a contender's process tree


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _read_pss(pid: int) -> int | None:
    """The Pss: line of /proc/PID/smaps_rollup in kB; None once gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _sample_tree(root: int, seen: dict) -> None:
    """One walk of root's descendants: each one's PSS, keeping the peak per pid."""
    kids = _children_map()
    todo = list(kids.get(root, []))
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        pss = _read_pss(pid)
        if pss is None:
            continue
        try:  # read every time: a process may exec (a shell, a shim) after we saw it
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = next((p for p, cs in kids.items() if pid in cs), 0)
        peak = max(pss, seen[pid][0]) if pid in seen else pss
        seen[pid] = (peak, cmd or seen.get(pid, (0, ""))[1], ppid)


def _read_stat_times(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
    utime, stime, cutime, cstime = (int(fields[i - 3]) for i in (14, 15, 16, 17))
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def measured(argv: list[str], env: dict[str, str], log_path: Path, timeout: float,
             pss: bool = False) -> Proc:
    """Runs argv to completion and measures it (see the module docstring); with
    `pss`, also the peak PSS of each of its descendants (Proc.descendants)."""
    p = Proc(argv=[str(a) for a in argv])
    with open(log_path, "ab") as log:
        log.write(("\n$ " + " ".join(p.argv) + "\n").encode())
        log.flush()
        p.start = time.time()
        t0 = time.monotonic()
        child = subprocess.Popen(p.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    p.pid = child.pid
    done = threading.Event()
    hwm = [0, 0]

    def sample() -> None:
        while not done.is_set():
            h, a = _read_mem(child.pid)
            hwm[0], hwm[1] = max(hwm[0], h), max(hwm[1], a)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def sample_pss() -> None:
        while not done.is_set():
            try:
                _sample_tree(child.pid, p.descendants)
            except Exception as e:  # noqa: BLE001 - a measuring bug must not hang the run
                p.descendants[-1] = (0, f"sampling failed: {e!r}", 0)
                return
            done.wait(PSS_INTERVAL)

    pss_sampler = threading.Thread(target=sample_pss, daemon=True) if pss else None
    if pss_sampler:
        pss_sampler.start()

    def kill_at_deadline() -> None:
        if not done.wait(timeout):
            p.timed_out = True
            try:
                os.killpg(child.pid, 9)
            except OSError:
                pass

    killer = threading.Thread(target=kill_at_deadline, daemon=True)
    killer.start()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    p.wall = time.monotonic() - t0
    p.end = time.time()
    done.set()
    sampler.join()
    if pss_sampler:
        pss_sampler.join()
    _, p.cpu_children = _read_stat_times(child.pid)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = p.returncode = os.waitstatus_to_exitcode(status)
    # rusage is precise (ns based) but includes the reaped children; their
    # share comes from the zombie's cutime/cstime (10 ms ticks).
    p.cpu_self = max(0.0, usage.ru_utime + usage.ru_stime - p.cpu_children)
    # Not ru_maxrss: Linux carries the parent's high-water mark over fork+exec
    # (the driver is a ~90 MiB Python process), so only VmHWM is the program's own.
    p.peak_rss_kib, p.peak_anon_kib = hwm
    return p


# --------------------------------------------------------------------------- Prefect setup

class Api:
    """What the driver itself asks the server (not counted for any contender)."""

    def __init__(self, server: PrefectServer, prefect: Prefect):
        self.server = server
        self.prefect = prefect

    def post(self, path: str, body: dict):
        req = urllib.request.Request(self.server.api_url + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def count(self, pool: str, states: list[str]) -> int:
        return int(self.post("/flow_runs/count", {
            "flow_runs": {"state": {"type": {"any_": states}}},
            "work_pools": {"name": {"any_": [pool]}},
        }))

    def runs(self, pool: str) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.post("/flow_runs/filter", {
                "work_pools": {"name": {"any_": [pool]}}, "limit": 200, "offset": offset})
            out += page
            if len(page) < 200:
                return out
            offset += 200

    def create_runs(self, deployment_id: str, n: int) -> list[str]:
        """n SCHEDULED runs due now, through Prefect's client, one after the other
        (concurrent creates make SQLite answer 503 and the client back off)."""

        async def go():
            ids = []
            async with self.prefect._client() as c:
                for _ in range(n):
                    run = await c.create_flow_run_from_deployment(uuid.UUID(deployment_id))
                    ids.append(str(run.id))
            return ids

        return asyncio.run(go())

    def deploy_from(self, directory: Path, pool: str, entrypoint: str, name: str) -> str:
        """harness.Prefect.deploy for a flow file of `directory` (not tests/e2e/flows):
        run from that directory (pull step set_working_directory)."""
        from harness import _retry, _run
        from prefect.flows import load_flow_from_entrypoint

        flow = load_flow_from_entrypoint(str(directory / entrypoint))
        flow_id = self.prefect.call("create_flow_from_name", flow.name)

        async def go():
            async with self.prefect._client() as c:
                return await c.create_deployment(
                    flow_id=flow_id, name=name, work_pool_name=pool, entrypoint=entrypoint,
                    path=str(directory),
                    pull_steps=[{"prefect.deployments.steps.set_working_directory":
                                 {"directory": str(directory)}}])

        return str(_retry(lambda: _run(go())))

    def setup_pool(self, entrypoint: str | None, runs: int, job_variables: dict | None = None,
                   directory: Path | None = None):
        pool = self.prefect.create_pool(paused=True)
        dep_id = None
        if entrypoint and directory:
            dep_id = self.deploy_from(directory, pool, entrypoint, f"dep-{pool}")
            if runs:
                self.create_runs(dep_id, runs)
        elif entrypoint:
            dep_id, _ = self.prefect.deploy(pool, entrypoint, name=f"dep-{pool}",
                                            job_variables=job_variables)
            if runs:
                self.create_runs(dep_id, runs)
        return pool, dep_id


# --------------------------------------------------------------------------- contenders

@dataclass
class Result:
    contender: str
    scenario: int
    rep: int
    wall: float
    cpu: float
    cpu_tree: float
    peak_rss_kib: int
    requests: int | None
    peak_anon_kib: int = 0
    exit_lag: float | None = None
    exit_after_reap: float | None = None  # prefect-cycle: exit - its last flow process reaped
    retry_sleep: float = 0.0  # prefect-cycle: seconds announced in "retry N of M in X s" lines
    states: dict = field(default_factory=dict)
    left_scheduled: int = 0
    iterations: int = 1
    stages: dict = field(default_factory=dict)
    request_list: list[str] = field(default_factory=list)
    ok: bool = True
    note: str = ""
    backend: str = "sqlite"  # the Prefect server's database (BENCH_BACKENDS)
    http_503: int | None = None  # answers 503 the controller got (None: not recorded)
    flow_pss_kib: int | None = None  # sum over the flow processes of each one's peak PSS
    flow_procs: int = 0  # flow processes seen by the PSS sampler
    launcher_pss_kib: int | None = None  # prefect-cycle-warm: the launcher's peak PSS (not summed)
    # prefect-cycle: per flow run, seconds from its "started:" line to its first
    # output line and to its "process ... exited" line (see run_profile)
    profile: list = field(default_factory=list)


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def normalise(method: str, url: str) -> str:
    path = url.split("/api", 1)[-1] if "/api" in url else url
    if method == "WS":
        method = "GET (websocket)"
    return f"{method} {UUID_RE.sub('{id}', path.split('?', 1)[0])}"


class Bench:
    def __init__(self, args, server: PrefectServer, api: Api, work: Path, binary: Path,
                 api_url: str | None = None):
        self.args = args
        self.server = server
        self.api_url = api_url or server.api_url  # what the contenders use
        self.api = api
        self.work = work
        self.binary = binary
        self.limit = {1: 5, 2: 5, 3: 20, 5: 20, 6: 5}
        self.runs = {1: 0, 2: args.runs_2, 3: args.runs_3, 5: 20, 6: args.runs_2}
        self.prefetch = 10
        self.timeout = args.timeout

    # the common environment of everything the contenders start
    def env(self, home: Path, scenario: int = 0) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(home / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        if scenario == 6:  # the heavy module, for the flow runs and the warm launcher
            env["PYTHONPATH"] = str(HEAVY_DIR)
        return env

    def scenario_pool(self, scenario: int):
        if scenario == 1:
            return self.api.setup_pool(None, 0)
        if scenario == 2:
            return self.api.setup_pool("flows.py:hello", self.runs[2])
        if scenario == 6:
            return self.api.setup_pool("heavy_flows.py:heavy", self.runs[6], directory=HEAVY_DIR)
        return self.api.setup_pool("flows.py:hello", self.runs[scenario],
                                   {"command": CHEAP_COMMAND})

    def finish(self, r: Result, pool: str, end: float) -> Result:
        runs = self.api.runs(pool)
        for run in runs:
            t = (run.get("state") or {}).get("type", "NONE")
            r.states[t] = r.states.get(t, 0) + 1
        r.left_scheduled = r.states.get("SCHEDULED", 0)
        ends = [parse_time(run.get("end_time")) for run in runs]
        ends = [e for e in ends if e is not None]
        if ends and r.scenario != 1:
            r.exit_lag = end - max(ends)
        expected = self.runs[r.scenario]
        if r.states.get("COMPLETED", 0) != expected and not r.contender.endswith("single"):
            r.ok = False
            r.note += f" expected {expected} COMPLETED, got {r.states}"
        return r

    def run_cycle(self, scenario: int, rep: int, warm: bool = False) -> Result:
        """prefect-cycle; `warm`: prefect-cycle-warm (PREFECT_CYCLE_WARM_START=true and,
        in scenario 6, PREFECT_CYCLE_PRELOAD_MODULES=bench_heavy)."""
        name = "prefect-cycle-warm" if warm else "prefect-cycle"
        pool, _ = self.scenario_pool(scenario)
        home = Path(tempfile.mkdtemp(prefix="cycle-", dir=self.work))
        env = self.env(home, scenario) | {
            "PREFECT_WORK_POOL": pool,
            "PREFECT_WORKER_FLOW_LIMIT": str(self.limit[scenario]),
            "PREFECT_WORKER_PREFETCH_SECONDS": str(self.prefetch),
            "PREFECT_WORKER_PYTHON": str(VENV_BIN / "python"),
            "PREFECT_WAIT_POLL_SECONDS": "1",
            "PREFECT_WORKER_CYCLE_LOG_LEVEL": "debug",
            "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text",  # the lines parsed below
        }
        if warm:
            env["PREFECT_CYCLE_WARM_START"] = "true"
            if scenario == 6:
                env["PREFECT_CYCLE_PRELOAD_MODULES"] = HEAVY_MODULE
        log = self.work / f"s{scenario}-r{rep}-{name}.log"
        p = measured([*self.args.cycle_prefix.split(), self.binary, "run"], env, log, self.timeout,
                     pss=True)
        text = log.read_text(errors="replace")
        requests = [normalise(m.group(1), m.group(2)) + f" -> {m.group(3)} ({m.group(4)} ms)"
                    for m in REQUEST_LINE.finditer(text)]
        r = Result(name, scenario, rep, p.wall, p.cpu_self, p.cpu_self + p.cpu_children,
                   p.peak_rss_kib, len(requests), p.peak_anon_kib, request_list=requests)
        # Flow processes: the pids of the "started: ... (pid N" lines, cold or warm
        # (not the launcher, nor the launcher's short-lived intermediate forks).
        flow_pids = {int(m.group(3)) for m in STARTED_LINE.finditer(text)}
        flows = [v for pid, v in p.descendants.items() if pid in flow_pids]
        r.flow_pss_kib, r.flow_procs = sum(v[0] for v in flows), len(flows)
        launcher = LAUNCHER_LINE.search(text)
        if launcher and int(launcher.group(1)) in p.descendants:
            r.launcher_pss_kib = p.descendants[int(launcher.group(1))][0]
        r.profile = run_profile(text)
        if -1 in p.descendants:
            r.note += " " + p.descendants[-1][1]
        if flow_pids and len(flows) < len(flow_pids):
            r.note += f" PSS sampled for {len(flows)} of {len(flow_pids)} flow processes"
        reaped = [parse_time(m.group(1)) for m in REAPED_LINE.finditer(text)]
        if reaped:
            r.exit_after_reap = p.end - max(reaped)
        r.retry_sleep = sum(float(x) for x in RETRY_LINE.findall(text))
        r.http_503 = sum(1 for line in text.splitlines() if " -> 503 " in line)
        if p.returncode != 0 or p.timed_out:
            r.ok = False
            r.note = f"exit {p.returncode}{' (timed out)' if p.timed_out else ''}; see {log}"
        shutil.rmtree(home, ignore_errors=True)
        return self.finish(r, pool, p.end)

    def run_baseline(self, scenario: int, rep: int, looped: bool = True) -> Result:
        pool, _ = self.scenario_pool(scenario)
        home = Path(tempfile.mkdtemp(prefix="baseline-", dir=self.work))
        http_log = home / "http.log"
        env = self.env(home, scenario)
        env |= {"PYTHONPATH": ":".join(filter(None, [str(BENCH / "httplog"),
                                                     env.get("PYTHONPATH")])),
                "BENCH_HTTP_LOG": str(http_log)}
        name = "baseline" if looped else "baseline-single"
        log = self.work / f"s{scenario}-r{rep}-{name}.log"
        prefect = str(VENV_BIN / "prefect")
        procs: list[Proc] = []
        stages: dict[str, float] = {}
        t0 = time.monotonic()
        deadline = t0 + self.timeout

        def step(stage: str, argv) -> Proc:
            p = measured(argv, env, log, max(1.0, deadline - time.monotonic()),
                         pss=stage == "worker")
            procs.append(p)
            stages[stage] = stages.get(stage, 0.0) + p.wall
            return p

        step("resume", [prefect, "work-pool", "resume", pool])
        workers = []
        while True:
            workers.append(step("worker", [
                prefect, "worker", "start", "--pool", pool, "--type", "process", "--run-once",
                "--limit", str(self.limit[scenario]), "--prefetch-seconds", str(self.prefetch)]))
            # The loop's "anything still due?" check is the driver's, not counted.
            if not looped or time.monotonic() > deadline or self.api.count(pool, ["SCHEDULED"]) == 0:
                break
        step("wait", [str(VENV_BIN / "python"), str(BENCH / "wait_active.py"), pool, "1"])
        last = step("pause", [prefect, "work-pool", "pause", pool])
        wall = time.monotonic() - t0

        pids = {p.pid for p in procs}
        requests = []
        http_503 = 0
        if http_log.exists():
            for line in http_log.read_text().splitlines():
                pid, method, url, status, ms = line.split("\t")
                if int(pid) in pids:
                    requests.append(normalise(method, url) + f" -> {status} ({ms} ms)")
                    http_503 += status == "503"
        r = Result(name, scenario, rep, wall, sum(p.cpu_self for p in procs),
                   sum(p.cpu_self + p.cpu_children for p in procs),
                   max(p.peak_rss_kib for p in workers), len(requests),
                   max(p.peak_anon_kib for p in workers), iterations=len(workers), stages=stages, request_list=requests,
                   http_503=http_503)
        bad = [p for p in procs if p.returncode != 0 or p.timed_out]
        if bad:
            r.ok = False
            r.note = "; ".join(f"{' '.join(p.argv[1:4])}: exit {p.returncode}"
                               f"{' (timed out)' if p.timed_out else ''}" for p in bad)
        r.stages["peak_rss_all_kib"] = max(p.peak_rss_kib for p in procs)
        # Flow processes: the worker's `python -m prefect.engine` descendants.
        flows = [v for w in workers for pid, v in w.descendants.items()
                 if pid != -1 and "prefect.engine" in v[1]]
        r.flow_pss_kib, r.flow_procs = sum(v[0] for v in flows), len(flows)
        shutil.rmtree(home, ignore_errors=True)
        return self.finish(r, pool, last.end)

    def run_floor(self, rep: int, claim: bool = False) -> Result:
        """The same command spawned once per run at the same concurrency;
        with `claim`, each first proposes PENDING through the API."""
        pool, dep = self.api.setup_pool("flows.py:hello", 0, {"command": CHEAP_COMMAND})
        ids = self.api.create_runs(dep, self.runs[3])
        home = Path(tempfile.mkdtemp(prefix="floor-", dir=self.work))
        env = self.env(home)
        inner = CHEAP_COMMAND[len("sh -c '"):-1]  # the sh -c script of the command
        if claim:
            inner = CLAIM_COMMAND + inner
        script = f'xargs -P {self.limit[3]} -I @ID@ env PREFECT__FLOW_RUN_ID=@ID@ sh -c \'{inner}\''
        ids_file = home / "ids"
        ids_file.write_text("\n".join(ids) + "\n")
        name = "floor-claim" if claim else "floor"
        log = self.work / f"s3-r{rep}-{name}.log"
        p = measured(["sh", "-c", f"{script} < {ids_file}"], env, log, self.timeout)
        r = Result(name, 3, rep, p.wall, p.cpu_self, p.cpu_self + p.cpu_children,
                   p.peak_rss_kib, len(ids) * (2 if claim else 1), p.peak_anon_kib,
                   note=f"command: {script}")
        shutil.rmtree(home, ignore_errors=True)
        return self.finish(r, pool, p.end)


LOG_LINE = re.compile(r"^(\S+)Z \S+\s+\[[^\]]*flow_run_id=([0-9a-f-]{36})[^\]]*\] (.*)$", re.M)
CLOCK_PREFIX = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| ")


PROFILE_PHASES = (  # run_profile's keys, in order: (key, what the table calls it)
    ("first", "first output line"),
    ("begin", "\"Beginning flow run\""),
    ("finished", "\"Finished in state\""),
    ("exit", "exit (reaped)"),
)


def run_profile(text: str) -> list[dict]:
    """Per flow run of a prefect-cycle debug log, seconds from its "started:" line
    to: its first output line in Prefect's console format ("HH:MM:SS.mmm | ...",
    "first"), its "Beginning flow run" line ("begin"), its "Finished in state"
    line ("finished"), and its "process ...; flow run X" line ("exit", when
    prefect-cycle reaped it). Output lines are timed by the flow's own clock (their
    HH:MM:SS.mmm; prefect-cycle may write a line up to 300 ms after reading it);
    the others by the log line's time."""
    runs: dict[str, dict] = {}
    for m in LOG_LINE.finditer(text):
        stamp, run, msg = m.group(1), m.group(2), m.group(3)
        t = parse_time(stamp + "Z")
        if msg.startswith("started: "):
            runs[run] = {"start": t}
            continue
        r = runs.get(run)
        if r is None or "exit" in r:
            continue
        if REAPED_LINE.match(m.group(0)):
            r["exit"] = t - r["start"]
            continue
        clock = CLOCK_PREFIX.match(msg)
        if not clock:
            continue  # prefect-cycle's own line about the run
        own = parse_time(f"{stamp.split('T')[0]}T{clock.group(1)}Z")
        if own is not None and abs(own - t) < 60:  # not across midnight
            t = own
        r.setdefault("first", t - r["start"])
        if "Beginning flow run" in msg:
            r.setdefault("begin", t - r["start"])
        elif "Finished in state" in msg:
            r.setdefault("finished", t - r["start"])
    return list(runs.values())


# --------------------------------------------------------------------------- report

def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(stat, unit: str, digits: int = 2) -> str:
    if stat is None:
        return "n/a"
    m, lo, hi = stat
    if lo == hi:
        return f"{m:.{digits}f}{unit}"
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}..{hi:.{digits}f}]"


def ratio(a, b) -> str:
    if a is None or b is None or b[0] == 0:
        return "n/a"
    return f"{a[0] / b[0]:.1f}x"


SCENARIO_TITLES = {
    1: "1. empty pool (nothing due)",
    2: "2. 20 due runs of flows.py:hello, limit 5",
    3: "3. 200 due runs, command = sh -c 'curl .../set_state COMPLETED', limit 20",
    5: "5. 20 due runs of that command, limit 20",
    6: "6. 20 due runs of bench/heavy/heavy_flows.py:heavy (imports bench_heavy, ~1 s), limit 5",
}

# Contenders by default (without --contenders / BENCH_CONTENDERS), per scenario.
DEFAULT_CONTENDERS = {
    2: ["baseline", "prefect-cycle", "prefect-cycle-warm"],
    3: ["baseline", "prefect-cycle", "floor", "floor-claim"],
    6: ["baseline", "prefect-cycle", "prefect-cycle-warm"],
}
CYCLES = ("prefect-cycle", "prefect-cycle-warm")


BACKEND_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def variant(backend: str, latency_ms: int) -> str:
    """The results' key for a backend at a latency: "sqlite", "sqlite+100ms"."""
    return backend if latency_ms == 0 else f"{backend}+{latency_ms}ms"


def title(key: str) -> str:
    backend, _, latency = key.partition("+")
    return BACKEND_TITLES[backend] + (f" +{latency.removesuffix('ms')} ms" if latency else "")


def table(results: list[Result]) -> str:
    out = []
    for s in sorted(SCENARIO_TITLES):
        rs = [r for r in results if r.scenario == s]
        if not rs:
            continue
        base = [r for r in rs if r.contender == "baseline"]
        ours = [r for r in rs if r.contender == "prefect-cycle"]
        warm = [r for r in rs if r.contender == "prefect-cycle-warm"]
        single = [r for r in rs if r.contender == "baseline-single"]
        floor = [r for r in rs if r.contender == "floor"]
        floor_claim = [r for r in rs if r.contender == "floor-claim"]
        n_floor = f" / {len(floor)}" if floor else ""
        n_warm = f" / {len(warm)}" if warm else ""
        out.append(f"\n### {SCENARIO_TITLES[s]}  (n = {len(base)} / {len(ours)}{n_warm}{n_floor})\n")
        head = "| figure | baseline | prefect-cycle | ratio baseline/prefect-cycle |"
        if warm:
            head += " prefect-cycle-warm | ratio cold/warm | ratio baseline/warm |"
        if floor:
            head += " floor (xargs) | prefect-cycle/floor |"
        if floor_claim:
            head += " floor + claim | prefect-cycle/(floor + claim) |"
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        rows = [
            ("wall time", lambda r: r.wall, " s", 3),
            ("controller CPU (user+sys, self)", lambda r: r.cpu, " s", 2),
            ("CPU incl. reaped flow processes", lambda r: r.cpu_tree, " s", 2),
            ("controller peak RSS (VmHWM)", lambda r: r.peak_rss_kib / 1024, " MiB", 1),
            ("controller peak anonymous RSS", lambda r: r.peak_anon_kib / 1024, " MiB", 1),
            ("HTTP requests by the controller", lambda r: r.requests, "", 0),
        ]
        if s != 1:
            rows.append(("flow processes' total PSS (sum of each one's peak)",
                         lambda r: None if r.flow_pss_kib is None else r.flow_pss_kib / 1024,
                         " MiB", 1))
            rows.append(("flow processes sampled", lambda r: r.flow_procs
                         if r.flow_pss_kib is not None else None, "", 0))
            if warm:
                rows.append(("(warm) the launcher's peak PSS, not in the sum",
                             lambda r: None if r.launcher_pss_kib is None
                             else r.launcher_pss_kib / 1024, " MiB", 1))
        if s != 1:
            rows.append(("exit after last run's end_time", lambda r: r.exit_lag, " s", 2))
            rows.append(("(prefect-cycle) exit after last flow process reaped",
                         lambda r: r.exit_after_reap, " s", 2))
            rows.append(("(prefect-cycle) time in HTTP retry back-off",
                         lambda r: r.retry_sleep if r.contender in CYCLES else None, " s", 1))
        for label, get, unit, digits in rows:
            a = med([get(r) for r in base])
            b = med([get(r) for r in ours])
            line = f"| {label} | {fmt(a, unit, digits)} | {fmt(b, unit, digits)} | {ratio(a, b)} |"
            if warm:
                w = med([get(r) for r in warm])
                line += f" {fmt(w, unit, digits)} | {ratio(b, w)} | {ratio(a, w)} |"
            for extra in (floor, floor_claim):
                if extra:
                    f = (med([get(r) for r in extra])
                         if label in ("wall time", "HTTP requests by the controller") else None)
                    line += f" {fmt(f, unit, digits)} | {ratio(b, f)} |"
            out.append(line)
        if single:
            r = single[0]
            out.append(f"\nbaseline with a single `--run-once` (n = {len(single)}): wall "
                       f"{fmt(med([x.wall for x in single]), ' s', 3)}, leaves "
                       f"{r.left_scheduled} of {sum(r.states.values())} runs SCHEDULED "
                       f"(states {r.states}).")
        loops = sorted({r.iterations for r in base})
        if s != 1 and base:
            out.append(f"\nbaseline `--run-once` invocations per cycle (looped until nothing "
                       f"due): {loops}")
        for name, group in (("prefect-cycle", ours), ("prefect-cycle-warm", warm)):
            prof = [x for r in group for x in r.profile]
            if s != 1 and prof:
                out.append(f"\n{name}, per flow run ({len(prof)} runs), from its \"started:\" "
                           "line to: " + ", ".join(
                               f"{label} {fmt(med([x.get(key) for x in prof]), ' s', 2)}"
                               for key, label in PROFILE_PHASES))
    return "\n".join(out)


def request_summary(results: list[Result], scenario: int) -> str:
    out = []
    for name in ("prefect-cycle", "prefect-cycle-warm", "baseline"):
        rs = [r for r in results if r.scenario == scenario and r.contender == name]
        if not rs:
            continue
        r = rs[-1]
        out.append(f"\n{name}, scenario {scenario}, repetition {r.rep}: {r.requests} request(s)\n")
        if scenario == 1 or name in CYCLES and scenario != 3:
            out += [f"{i + 1:3d}. {line}" for i, line in enumerate(r.request_list)]
        else:
            counts: dict[str, int] = {}
            for line in r.request_list:
                line = re.sub(r" \(\d+ ms\)$", "", line)
                counts[line] = counts.get(line, 0) + 1
            out += [f"{n:5d} x {line}" for line, n in sorted(counts.items(), key=lambda x: -x[1])]
    return "```\n" + "\n".join(out).strip() + "\n```" if out else ""


def side_by_side(results: list[Result], backends: list[str]) -> str:
    """Per scenario and contender, each backend's wall median, requests and 503s
    next to each other; the wall ratio of each backend to the first; and, per
    backend, the ratio baseline / prefect-cycle as in the per-backend tables."""
    first = backends[0]
    head = ("| contender | " + " | ".join(f"wall {b}" for b in backends) + " | "
            + " | ".join(f"wall {b}/{first}" for b in backends[1:])
            + (" | " if backends[1:] else "")
            + " | ".join(f"requests {b}" for b in backends) + " | "
            + " | ".join(f"HTTP 503 {b}" for b in backends) + " |")
    out = []
    for s in sorted(SCENARIO_TITLES):
        rs = [r for r in results if r.scenario == s and r.contender != "baseline-single"]
        if not rs:
            continue
        out.append(f"\n### {SCENARIO_TITLES[s]}\n")
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        contenders = [c for c in ("baseline", "prefect-cycle", "prefect-cycle-warm", "floor",
                                  "floor-claim")
                      if any(r.contender == c for r in rs)]

        def stats(c, b, get):
            return med([get(r) for r in rs if r.contender == c and r.backend == b])

        for c in contenders:
            walls = [stats(c, b, lambda r: r.wall) for b in backends]
            reqs = [stats(c, b, lambda r: r.requests) for b in backends]
            e503 = [stats(c, b, lambda r: r.http_503) for b in backends]
            n = [sum(1 for r in rs if r.contender == c and r.backend == b) for b in backends]
            out.append(f"| {c} (n = {' / '.join(map(str, n))}) | "
                       + " | ".join(fmt(w, " s", 3) for w in walls) + " | "
                       + " | ".join(ratio(w, walls[0]) for w in walls[1:])
                       + (" | " if backends[1:] else "")
                       + " | ".join(fmt(q, "", 0) for q in reqs) + " | "
                       + " | ".join(fmt(e, "", 0) for e in e503) + " |")
        if "baseline" in contenders and "prefect-cycle" in contenders:
            walls = [ratio(stats("baseline", b, lambda r: r.wall),
                           stats("prefect-cycle", b, lambda r: r.wall)) for b in backends]
            reqs = [ratio(stats("baseline", b, lambda r: r.requests),
                          stats("prefect-cycle", b, lambda r: r.requests)) for b in backends]
            out.append("| ratio baseline/prefect-cycle | " + " | ".join(walls) + " | "
                       + " | ".join("" for _ in backends[1:]) + (" | " if backends[1:] else "")
                       + " | ".join(reqs) + " | " + " | ".join("" for _ in backends) + " |")
    return "\n".join(out)


def raw(results: list[Result]) -> str:
    out = ["| backend | scenario | contender | rep | wall s | CPU s | CPU tree s | peak RSS MiB "
           "| flow PSS MiB (processes) | requests | HTTP 503 | exit lag s | run-once calls "
           "| final states | ok | note |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r.stages.items() if k != "peak_rss_all_kib")
        note = (r.note + (f" stages: {stages}" if stages else "")).strip().replace("|", "\\|")
        out.append(f"| {r.backend} | {r.scenario} | {r.contender} | {r.rep} | {r.wall:.3f} | "
                   f"{r.cpu:.2f} | {r.cpu_tree:.2f} | {r.peak_rss_kib / 1024:.1f} | "
                   f"{'' if r.flow_pss_kib is None else f'{r.flow_pss_kib / 1024:.1f} ({r.flow_procs})'} | "
                   f"{r.requests} | "
                   f"{'n/a' if r.http_503 is None else r.http_503} | "
                   f"{'' if r.exit_lag is None else f'{r.exit_lag:.2f}'} | {r.iterations} | "
                   f"{json.dumps(r.states)} | {'yes' if r.ok else 'NO'} | {note} |")
    return "\n".join(out)


def machine(binary: Path, backends: list[str]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    mem = next((line.split(":", 1)[1].strip() for line in open("/proc/meminfo")
                if line.startswith("MemTotal")), "?")
    prefect_version = subprocess.run([str(VENV_BIN / "python"), "-c",
                                      "import prefect; print(prefect.__version__)"],
                                     capture_output=True, text=True).stdout.strip()
    version = subprocess.run([str(binary), "version"], capture_output=True, text=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return "\n".join([
        f"- machine: {os.cpu_count()} CPU(s) ({cpu}), memory {mem}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, Prefect {prefect_version} "
        f"({' and '.join(BACKEND_TITLES[b] for b in backends)} server on "
        f"127.0.0.1), curl {subprocess.run(['curl', '--version'], capture_output=True, text=True).stdout.split()[1]}",
        f"- prefect-cycle: `{(version.stdout or version.stderr).strip()}`, built from {head}"
        f"{' with uncommitted changes in src/' if dirty else ''}",
        f"- load average at start: {open('/proc/loadavg').read().split()[:3]} "
        "(the machine is shared with other builds and tests)",
    ])


def libcurl_floor(url: str, work: Path) -> str:
    """Peak RSS of bench/libcurl_floor.c making one request: the least any
    program using Debian's libcurl needs. A results line, or why not."""
    exe = work / "libcurl_floor"
    build = subprocess.run(["cc", str(ROOT / "bench" / "libcurl_floor.c"), "-o", str(exe),
                            "-lcurl"], capture_output=True, text=True)
    if build.returncode != 0:
        return f"\n- libcurl floor: not measured ({build.stderr.strip()[:200]})"
    out = subprocess.run([str(exe), url], capture_output=True, text=True).stdout
    hwm = re.search(r"VmHWM:\s+(\d+) kB", out)
    if not hwm:
        return f"\n- libcurl floor: not measured (output {out!r})"
    return (f"\n- libcurl floor (bench/libcurl_floor.c, one request through Debian's libcurl): "
            f"peak RSS {int(hwm.group(1)) / 1024:.1f} MiB")


# --------------------------------------------------------------------------- main

def start_backend(backend: str):
    """(PrefectServer, PostgresServer or None, description) for one backend: SQLite
    is the server's default; for postgres a throwaway PostgreSQL exactly as the
    e2e suite starts it (tests/e2e/pg_server.py) and the server pointed at it."""
    if backend == "sqlite":
        server = PrefectServer().start()
        return server, None, f"SQLite, Prefect server started in {server.startup_seconds:.1f} s"
    from pg_server import PostgresServer

    pg = PostgresServer().start()
    try:
        server = PrefectServer({"PREFECT_API_DATABASE_CONNECTION_URL":
                                f"postgresql+asyncpg://{pg.user}:{pg.password}@127.0.0.1:"
                                f"{pg.port}/{pg.database}"}).start()
    except BaseException:
        pg.stop()
        raise
    version = subprocess.run([str(pg.bindir / "postgres"), "--version"], capture_output=True,
                             text=True).stdout.strip()
    return server, pg, (f"{version or 'PostgreSQL'} on 127.0.0.1:{pg.port} (tests/e2e/pg_server.py), "
                        f"Prefect server started in {server.startup_seconds:.1f} s")


def run_backend(args, backend: str, scenarios: list[int], work: Path, binary: Path,
                results: list[Result], want_floor: bool) -> tuple[str, str]:
    """Starts the server on `backend`, runs the scenarios with every contender at
    every latency into `results` (tagged with variant(backend, latency)), stops
    the server. Returns (description, libcurl floor line or "")."""
    server, pg, description = start_backend(backend)
    print(f"backend {backend}: {description}", flush=True)
    floor_line = ""
    try:
        prefect = Prefect(server)
        api = Api(server, prefect)
        # Warm-up (not measured): the first CLI start compiles bytecode, the
        # first deployment creates the flow.
        pool, _ = api.setup_pool("flows.py:hello", 0)
        if want_floor:
            floor_line = libcurl_floor(server.api_url + "/health", work)
            print(floor_line.strip(), flush=True)
        measured([VENV_BIN / "prefect", "work-pool", "inspect", pool],
                 Bench(args, server, api, work, binary).env(work), work / "warmup.log", 120)
        for latency in args.latency_list:
            proxy = None
            if latency:
                proxy = FaultProxy(server.api_url.removesuffix("/api"),
                                   latency=latency / 1000).start()
            # Each latency its own log directory: the logs are appended to,
            # and the request counts are read from them.
            lwork = work / f"{latency}ms" if latency else work
            lwork.mkdir(exist_ok=True)
            try:
                bench = Bench(args, server, api, lwork, binary, proxy.api_url if proxy else None)
                run_scenarios(args, bench, variant(backend, latency), scenarios, results)
            finally:
                if proxy:
                    proxy.stop()
    finally:
        server.stop()
        if pg:
            pg.stop()
    return description, floor_line


def contenders(args, scenario: int) -> list[str]:
    """--contenders / BENCH_CONTENDERS if given (each where it applies: the floors
    in scenario 3 only), else DEFAULT_CONTENDERS."""
    if args.contenders:
        return [c.strip() for c in args.contenders.split(",")]
    return DEFAULT_CONTENDERS.get(scenario, ["baseline", "prefect-cycle"])


def run_scenarios(args, bench: "Bench", key: str, scenarios: list[int],
                  results: list[Result]) -> None:
    """Every scenario with every contender, alternating, tagged `key`."""
    tag = f"[{key}] "
    # One unmeasured empty cycle of each contender (logs s1-r-1-*): the first answer
    # to a query shape is slow (a first /flow_runs/count took 269 ms, not 9).
    if 1 in scenarios:
        for who in ("baseline", "prefect-cycle"):
            if who in contenders(args, 1):
                (bench.run_baseline if who == "baseline" else bench.run_cycle)(1, -1)
    repeats = {s: args.repeats_1 if s == 1 else args.repeats for s in scenarios}
    for rep in range(max(repeats.values(), default=0)):
        for s in scenarios:
            if rep >= repeats[s]:
                continue
            order = ["baseline", "prefect-cycle", "prefect-cycle-warm"]
            if rep % 2:
                order.reverse()
            if s == 3:
                order += ["floor", "floor-claim"]
                if rep >= args.baseline_repeats_3:
                    order.remove("baseline")
            order = [c for c in order if c in contenders(args, s)]
            for who in order:
                if s == 1:
                    time.sleep(args.settle)
                t = time.monotonic()
                if who == "baseline":
                    r = bench.run_baseline(s, rep)
                elif who in CYCLES:
                    r = bench.run_cycle(s, rep, warm=who == "prefect-cycle-warm")
                else:
                    r = bench.run_floor(rep, claim=who == "floor-claim")
                r.backend = key
                results.append(r)
                print(f"{tag}scenario {s} rep {rep} {who}: wall {r.wall:.3f} s, cpu {r.cpu:.2f} s, "
                      f"rss {r.peak_rss_kib / 1024:.1f} MiB, requests {r.requests}, exit lag "
                      f"{r.exit_lag if r.exit_lag is None else round(r.exit_lag, 2)}, states "
                      f"{r.states}, flow PSS "
                      f"{'n/a' if r.flow_pss_kib is None else f'{r.flow_pss_kib / 1024:.1f} MiB'}"
                      f" ({r.flow_procs} processes){'' if r.ok else ' NOT OK: ' + r.note} "
                      f"({time.monotonic() - t:.0f} s incl. setup)", flush=True)
            if s == 2 and rep < args.single_repeats and "baseline" in contenders(args, s):
                r = bench.run_baseline(s, rep, looped=False)
                r.backend = key
                results.append(r)
                print(f"{tag}scenario {s} rep {rep} baseline-single: wall {r.wall:.3f} s, leaves "
                      f"{r.left_scheduled} SCHEDULED, states {r.states}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")))
    ap.add_argument("--repeats-1", type=int, default=int(os.environ.get("BENCH_REPEATS_1", "5")),
                    help="repetitions in scenario 1 (cheap, and the most sensitive to a busy server)")
    ap.add_argument("--settle", type=float, default=float(os.environ.get("BENCH_SETTLE", "3")),
                    help="seconds to wait before each scenario-1 run, so the server has finished "
                         "the previous run's background work (events, flushes)")
    ap.add_argument("--scenarios", default=os.environ.get("BENCH_SCENARIOS", "1,2,3"))
    ap.add_argument("--single-repeats", type=int,
                    default=int(os.environ.get("BENCH_SINGLE_REPEATS", "1")),
                    help="repetitions of the one-shot (not looped) baseline in scenarios 2, 3")
    ap.add_argument("--baseline-repeats-3", type=int,
                    default=int(os.environ.get("BENCH_BASELINE_REPEATS_3", "1")),
                    help="repetitions of the baseline in scenario 3 (about 200 s each)")
    ap.add_argument("--runs-2", type=int, default=20)
    ap.add_argument("--runs-3", type=int, default=200)
    ap.add_argument("--contenders", default=os.environ.get("BENCH_CONTENDERS", ""),
                    help="comma list of baseline, prefect-cycle, prefect-cycle-warm, floor, "
                         "floor-claim (the floors run in scenario 3 only); default: per "
                         "scenario, baseline and prefect-cycle, plus prefect-cycle-warm in 2 "
                         "and 6, plus the floors in 3")
    ap.add_argument("--cycle-prefix", default=os.environ.get("BENCH_CYCLE_PREFIX", ""),
                    help="command prefix for prefect-cycle (profiling: 'strace -c -o F')")
    ap.add_argument("--timeout", type=float, default=600, help="per contender run, seconds")
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT", ""))
    ap.add_argument("--backends", default=os.environ.get("BENCH_BACKENDS", "sqlite,postgres"),
                    help="the Prefect server's databases, one server each, one after the other "
                         "(sqlite, postgres)")
    ap.add_argument("--latency-ms", default=os.environ.get("BENCH_LATENCY_MS", "0"),
                    help="comma list of latencies per answer between the contenders and the "
                         "server (0 = direct; e.g. 0,100)")
    args = ap.parse_args()
    try:
        args.latency_list = [int(x) for x in args.latency_ms.split(",") if x.strip()]
    except ValueError:
        args.latency_list = []
    if not args.latency_list or any(x < 0 or x > 5000 for x in args.latency_list):
        ap.error(f"--latency-ms / BENCH_LATENCY_MS: {args.latency_ms!r}: a comma list of "
                 "milliseconds, 0..5000")
    scenarios = [int(s) for s in args.scenarios.split(",") if s.strip()]
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backend_list if b not in BACKEND_TITLES]
    if unknown or not args.backend_list or len(set(args.backend_list)) != len(args.backend_list):
        ap.error(f"--backends / BENCH_BACKENDS: {args.backends!r}: a list of distinct "
                 f"{', '.join(BACKEND_TITLES)}")
    backends = args.backend_list
    keys = [variant(b, ms) for b in backends for ms in args.latency_list]

    work = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    # A private copy: other builds may replace build/prefect-cycle during the run.
    binary = work / "prefect-cycle"
    shutil.copy2(binary_path(), binary)
    info = machine(binary, backends)
    print(info, flush=True)

    started = time.monotonic()
    results: list[Result] = []
    described: dict[str, str] = {}
    failed: dict[str, str] = {}
    for i, backend in enumerate(backends):
        # One backend: the logs where they always were; several: a directory each.
        bwork = work / backend if len(backends) > 1 else work
        bwork.mkdir(exist_ok=True)
        try:
            description, floor_line = run_backend(
                args, backend, scenarios, bwork, binary, results, want_floor=i == 0)
            for ms in args.latency_list:
                described[variant(backend, ms)] = description + (
                    f"; through a proxy holding each answer {ms} ms" if ms else "")
        except RuntimeError as e:  # a server that did not start: the other backends still run
            if len(backends) == 1:
                raise
            for ms in args.latency_list:
                failed[variant(backend, ms)] = str(e).strip().splitlines()[0]
            print(f"[{backend}] NOT RUN: {e}", file=sys.stderr, flush=True)
            continue
        info += floor_line

    elapsed = time.monotonic() - started
    multi = len(keys) > 1

    def per_backend(render, *extra) -> str:
        """render(results, *extra) as today for one backend; for several, once per
        backend under its own heading."""
        if not multi:
            return render(results, *extra)
        parts = [(b, render([r for r in results if r.backend == b], *extra).strip("\n"))
                 for b in keys if b in described]
        return "\n\n".join(f"### {title(b)}\n\n{text}" for b, text in parts if text)

    if multi:
        ran = [b for b in keys if b in described]
        summary = "\n".join([
            "",
            "## Backends side by side",
            "",
            f"One Prefect server per backend ({', '.join(ran)}), one after the other, each "
            "with every scenario and contender. HTTP 503: answers 503 the controller got "
            "(prefect-cycle: ` -> 503 ` lines of its debug log; baseline: its httpx log; "
            "n/a for the floors, whose curl retries silently).",
            side_by_side(results, ran),
            *[f"\n**{b} not run:** {why}" for b, why in failed.items()],
            "",
            "## Per backend",
            "",
            per_backend(lambda rs: table(rs).replace("\n### ", "\n#### ")),
        ])
    else:
        summary = table(results)
    print(summary)
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([
        f"# Benchmark {dt.datetime.now().isoformat(timespec='seconds')}",
        "",
        "Generated by `scripts/bench.sh` (bench/bench.py); how to read it: docs/benchmarks.md.",
        "",
        info,
        *([f"- backend {b}: {d}" for b, d in described.items()] if multi else []),
        *([f"- backend {b}: NOT RUN ({why})" for b, why in failed.items()] if multi else []),
        f"- load average at end: {open('/proc/loadavg').read().split()[:3]}",
        f"- repetitions: {args.repeats} per contender (scenario 1: {args.repeats_1}, each after "
        f"a {args.settle:g}-s pause; scenario 3 baseline: "
        f"{min(args.repeats, args.baseline_repeats_3)}, about 200 s each; one-shot baseline in "
        f"scenario 2: {args.single_repeats}); limit 5 / 5 / 20 / 20 / 5 (scenarios 1, 2, 3, 5, "
        f"6), prefetch 10 s; "
        f"total {elapsed / 60:.1f} min",
        f"- prefect-cycle command prefix: `{args.cycle_prefix}`" if args.cycle_prefix else "",
        "",
        "Cells: median [min..max].",
        summary,
        "",
        "## HTTP requests, empty pool",
        "",
        per_backend(request_summary, 1),
        "",
        "## HTTP requests, scenario 3 (by endpoint)",
        "",
        per_backend(request_summary, 3),
        "",
        "## Every run",
        "",
        raw(results),
        "",
        f"Logs of this run: {work} (not kept in the repository).",
        "",
    ]))
    print(f"\nwritten to {out}")
    return 0 if all(r.ok for r in results) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
