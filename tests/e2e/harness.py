"""Helpers for the end-to-end tests: a real Prefect server, pools, deployments,
flow runs, and running the prefect-cycle binary against them.

Everything talks to the real server through Prefect's own Python client, so a
test checks what Prefect itself sees. The pytest fixtures in conftest.py wrap
these classes; a new test file normally needs only the fixtures:

    def test_something(deploy, pool, schedule_runs, run_cycle, prefect):
        deployment_id, full_name = deploy(pool, "flows.py", "hello")
        [run] = schedule_runs(deployment_id, 1)
        result = run_cycle({"PREFECT_WORKER_FLOW_LIMIT": "2"})
        assert result.returncode == 0, result          # str(result) = output
        assert prefect.state_type(run) == "COMPLETED"
        assert prefect.pool(pool).is_paused

Classes and functions here (all documented below): free_port, binary_path,
PrefectServer, Prefect, Cycle, CycleResult, CycleProcess, ConnectionRecorder,
wait_for.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
VENV_PYTHON = VENV_BIN / "python"
FLOWS_DIR = Path(__file__).resolve().parent / "flows"

# Prefect's terminal and active state types, as the server spells them.
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ACTIVE_STATES = {"PENDING", "RUNNING", "CANCELLING"}
# The auth string of the auth_prefect_server fixture's server.
AUTH_STRING = "user:pass"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key) in `directory`,
    for the TLS servers of the tests: (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def kill_like_a_dead_container(popen: subprocess.Popen, flow_pids: Iterable[int]) -> None:
    """Kills a cycle and its flow processes at once, as a container or pod
    stopped hard dies. The cycle is frozen first so that its pipes stay open:
    a flow whose stdout breaks reports itself CRASHED, which is not the case
    under test. Each pid's process group goes (a flow is its group's leader),
    or the process itself when it leads none."""
    popen.send_signal(signal.SIGSTOP)
    for pid in flow_pids:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
                break
            except ProcessLookupError:
                continue
    popen.send_signal(signal.SIGKILL)
    popen.wait(timeout=10)


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.3):
    """Polls predicate() until it returns something truthy (returned), or
    raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def proc_status_kib(pid: int, field: str) -> int:
    """A "kB" field of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...) in KiB; 0
    once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class StatusSampler:
    """Samples a /proc/PID/status field (see proc_status_kib) every `interval`
    seconds in a thread, from construction until stop(): .samples (non-zero
    values, in order), .peak."""

    def __init__(self, pid: int, field: str, interval: float = 0.05):
        self.samples: list[int] = []
        self._done = threading.Event()

        def sample():
            while not self._done.is_set():
                value = proc_status_kib(pid, field)
                if value:
                    self.samples.append(value)
                self._done.wait(interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> "StatusSampler":
        self._done.set()
        self._thread.join()
        return self

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


_binary_snapshot: Path | None = None


def binary_path() -> Path:
    """The prefect-cycle binary under test: $PREFECT_CYCLE_BIN, else
    build/prefect-cycle (build it with scripts/build.sh).

    The first call copies it into a private temp dir and every later call
    returns that copy, so that a rebuild while the suite runs (the linker
    rewriting build/prefect-cycle) cannot make a test fail with EACCES/ETXTBSY
    or mix two versions in one session. Raises RuntimeError if it is missing."""
    global _binary_snapshot
    if _binary_snapshot is not None and _binary_snapshot.exists():
        return _binary_snapshot
    source = Path(os.environ.get("PREFECT_CYCLE_BIN") or ROOT / "build" / "prefect-cycle")
    if not source.is_file():
        raise RuntimeError(f"{source} does not exist: run scripts/build.sh first "
                           "(or point PREFECT_CYCLE_BIN at a built prefect-cycle)")
    snapshot_dir = Path(tempfile.mkdtemp(prefix="pc-e2e-bin-"))
    atexit.register(shutil.rmtree, snapshot_dir, True)
    snapshot = snapshot_dir / "prefect-cycle"
    for attempt in range(20):  # the linker may be writing it right now
        try:
            shutil.copy2(source, snapshot)
            break
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    _binary_snapshot = snapshot
    return snapshot


def require_venv() -> None:
    """Raises RuntimeError unless the project venv (scripts/setup.sh) exists."""
    if not (VENV_BIN / "prefect").exists() or not VENV_PYTHON.exists():
        raise RuntimeError(f"{VENV_BIN}/prefect not found: run scripts/setup.sh to create "
                           "the venv with the pinned Prefect")


class PrefectServer:
    """A real `prefect server start` on 127.0.0.1: throwaway PREFECT_HOME,
    SQLite, a free port, analytics and UI off.

    Attributes: .port, .home (Path, the PREFECT_HOME), .api_url
    ("http://127.0.0.1:PORT/api"), .auth_string (the server's
    PREFECT_SERVER_API_AUTH_STRING or None), .log_path (server output).
    `PrefectServer(extra_env).start()` blocks until /api/health answers 200
    (RuntimeError with the log tail after `timeout`); `.stop()` kills it and
    removes its home. `.env()` is the environment for Prefect's client."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        require_venv()
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pc-prefect-home-"))
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.extra_env = dict(extra_env or {})
        self.log_path = self.home / "server.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def auth_string(self) -> str | None:
        return self.extra_env.get("PREFECT_SERVER_API_AUTH_STRING")

    def base_env(self) -> dict[str, str]:
        """The server process's environment (before extra_env)."""
        return {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def start(self, timeout: float = 90) -> "PrefectServer":
        env = self.base_env() | self.extra_env
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # No proxies: a developer's http_proxy must not see loopback requests.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = started + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with opener.open(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.monotonic() - started
                        return self
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.5)
        code = self.process.poll()
        tail = self.log_tail()
        self.stop()
        why = (f"exited with {code}" if code is not None
               else f"did not answer {self.api_url}/health with 200 within {timeout}s")
        raise RuntimeError(f"Prefect server on port {self.port} {why}; server log tail:\n{tail}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """Environment for Prefect's Python client/CLI against this server:
        PREFECT_API_URL, PREFECT_API_AUTH_STRING (auth servers only) and a
        PREFECT_HOME of its own."""
        env = {"PREFECT_API_URL": self.api_url,
               "PREFECT_HOME": str(self.home / "client-home"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env

    client_env = env  # older name


def _run(coro):
    return asyncio.run(coro)


def _is_transient(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover
        httpx = None
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return True
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None) in (429, 502, 503, 504):
        return True
    text = str(exc)
    return "503 Service Unavailable" in text or "database is locked" in text


def _retry(fn, attempts: int = 8):
    """Calls fn(); retries transient failures (a fresh SQLite server answers
    503 under contention; connection resets) with a growing pause."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - the last one is raised
            if i == attempts - 1 or not _is_transient(e):
                raise
            time.sleep(0.5 * (i + 1))


class Prefect:
    """Prefect's own client (PrefectClient) against one server, as plain
    synchronous functions; every call retries transient errors.

    - call(method, *args, **kw): any PrefectClient coroutine method by name,
      e.g. prefect.call("set_flow_run_state", uuid.UUID(id), Running(), force=True)
    - create_pool(name=None, paused=True, type_="process") -> name
    - pool(name) -> WorkPool (.is_paused, .status.value in READY/NOT_READY/PAUSED)
    - pool_status(name) -> (is_paused, "PAUSED"|"READY"|"NOT_READY")
    - deploy(pool, "file.py:func", name, flow_name, job_variables) -> (id, "flow/dep")
    - deploy_flow(pool, "file.py", "func", ...) -> same
    - schedule_runs(deployment_id, n, parameters) -> [flow run id]
    - run(id) -> FlowRun; state_type(id) -> "COMPLETED"...; state(id) -> State
    - states(id) -> state history types, oldest first
    - wait_for_state(id, {"RUNNING"}, timeout) -> the state type reached
    - pool_runs(pool) -> every FlowRun of the pool
    """

    def __init__(self, server: PrefectServer):
        self.server = server

    def _client(self):
        from prefect.client.orchestration import PrefectClient

        return PrefectClient(self.server.api_url, auth_string=self.server.auth_string)

    def call(self, method: str, *args, **kwargs):
        async def go():
            async with self._client() as c:
                return await getattr(c, method)(*args, **kwargs)

        return _retry(lambda: _run(go()))

    # --- pools
    def create_pool(self, name: str | None = None, paused: bool = True,
                    type_: str = "process") -> str:
        """Creates a work pool (process pools get Prefect's default process
        base job template); returns its name (unique if not given)."""
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.workers.process import ProcessWorker

        name = name or f"pool-{uuid.uuid4().hex[:8]}"
        template = ProcessWorker.get_default_base_job_template() if type_ == "process" else {}
        self.call("create_work_pool", WorkPoolCreate(
            name=name, type=type_, is_paused=paused, base_job_template=template))
        return name

    def pool(self, name: str):
        """The work pool as Prefect's client reads it."""
        return self.call("read_work_pool", name)

    def pool_status(self, name: str) -> tuple[bool, str]:
        """(is_paused, status) of a pool; status is PAUSED, READY or NOT_READY."""
        p = self.pool(name)
        status = p.status.value if p.status is not None else "NONE"
        return bool(p.is_paused), status

    # --- deployments and runs
    def deploy(self, pool: str, entrypoint: str, name: str = "dep", flow_name: str | None = None,
               job_variables: dict | None = None) -> tuple[str, str]:
        """Deploys a flow from tests/e2e/flows ("file.py:func") into `pool`,
        run from that directory by `python -m prefect.engine` (pull step
        set_working_directory). `flow_name` renames the flow.

        Returns (deployment id, "flow-name/deployment-name")."""
        from prefect.flows import load_flow_from_entrypoint

        flow = load_flow_from_entrypoint(str(FLOWS_DIR / entrypoint))
        if flow_name:
            flow = flow.with_options(name=flow_name)
        flow_id = self.call("create_flow_from_name", flow.name)

        async def go():
            async with self._client() as c:
                return await c.create_deployment(
                    flow_id=flow_id,
                    name=name,
                    work_pool_name=pool,
                    entrypoint=entrypoint,
                    path=str(FLOWS_DIR),
                    pull_steps=[{"prefect.deployments.steps.set_working_directory":
                                 {"directory": str(FLOWS_DIR)}}],
                    job_variables=job_variables or {},
                )

        deployment_id = _retry(lambda: _run(go()))
        return str(deployment_id), f"{flow.name}/{name}"

    def deploy_flow(self, pool: str, flow_file: str, func: str, name: str = "dep",
                    flow_name: str | None = None,
                    job_variables: dict | None = None) -> tuple[str, str]:
        """deploy() with the file and the function given separately."""
        return self.deploy(pool, f"{flow_file}:{func}", name=name, flow_name=flow_name,
                           job_variables=job_variables)

    def schedule_runs(self, deployment_id: str, n: int, parameters: dict | None = None,
                      start=None) -> list[str]:
        """n flow runs of the deployment, SCHEDULED and due now (or at the
        datetime `start`); their ids."""
        from prefect.states import Scheduled

        ids = []
        for _ in range(n):
            extra = {"state": Scheduled(scheduled_time=start)} if start else {}
            run = self.call("create_flow_run_from_deployment", uuid.UUID(str(deployment_id)),
                            parameters=parameters or {}, **extra)
            ids.append(str(run.id))
        return ids

    def run(self, run_id: str):
        """The FlowRun (with .state, .state.message, .infrastructure_pid, ...)."""
        return self.call("read_flow_run", uuid.UUID(str(run_id)))

    def state(self, run_id: str):
        """The run's current State (or None)."""
        return self.run(run_id).state

    def state_type(self, run_id: str) -> str:
        """The run's current state type: "COMPLETED", "FAILED", ... ("NONE" if none)."""
        run = self.run(run_id)
        return run.state.type.value if run.state else "NONE"

    def states(self, run_id: str) -> list[str]:
        """The run's state history, oldest first, as type names."""
        history = self.call("read_flow_run_states", uuid.UUID(str(run_id)))
        return [s.type.value for s in sorted(history, key=lambda s: s.timestamp)]

    def wait_for_state(self, run_id: str, types: Iterable[str], timeout: float = 60) -> str:
        """Polls until the run's state type is one of `types`; returns it."""
        wanted = set(types)
        return wait_for(lambda: (t := self.state_type(run_id)) in wanted and t,
                        timeout, f"flow run {run_id} to reach {sorted(wanted)}", 0.5)

    def pool_runs(self, pool: str) -> list:
        """Every flow run of the pool (up to 200)."""
        from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

        return self.call("read_flow_runs", work_pool_filter=WorkPoolFilter(
            name=WorkPoolFilterName(any_=[pool])), limit=200)


@dataclass
class CycleResult:
    """What one prefect-cycle invocation did. str(result) shows the exit code,
    duration and output tails: use `assert cond, result`."""

    returncode: int
    stdout: str
    stderr: str
    summary: dict | None  # parsed PREFECT_CYCLE_SUMMARY_FILE, None if not written
    duration: float  # seconds, wall clock
    args: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # shown by pytest on assertion failures
        return (f"prefect-cycle {' '.join(self.args)}: exit {self.returncode} after "
                f"{self.duration:.1f}s\n--- stdout\n{self.stdout[-4000:]}"
                f"\n--- stderr\n{self.stderr[-8000:]}\n--- summary\n{self.summary}")


class CycleProcess:
    """A prefect-cycle started in the background (Cycle.spawn). Its output is
    read continuously, so a test can wait for a log line and then signal it:

        proc = cycle.spawn(pool)
        proc.wait_for_output("[phase=wait] phase started", timeout=60)
        proc.send_signal(signal.SIGTERM)
        result = proc.finish(timeout=60)     # CycleResult
    """

    def __init__(self, popen: subprocess.Popen, args: list[str], summary_path: Path,
                 started: float):
        self.popen = popen
        self.args = args
        self.summary_path = summary_path
        self.started = started
        self._out: list[str] = []
        self._err: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, args=(popen.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(popen.stderr, self._err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, sink: list[str]) -> None:
        for line in stream:
            with self._lock:
                sink.append(line)
        stream.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stdout(self) -> str:
        with self._lock:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self._err)

    def wait_for_output(self, text: str, timeout: float = 60, stream: str = "both") -> None:
        """Waits until `text` appears in stderr/stdout ("stderr", "stdout" or
        "both"); AssertionError with the output so far if the process exits
        first or `timeout` passes."""
        def seen() -> bool:
            if stream in ("stderr", "both") and text in self.stderr:
                return True
            return stream in ("stdout", "both") and text in self.stdout

        deadline = time.monotonic() + timeout
        while not seen():
            if self.popen.poll() is not None:
                for t in self._readers:
                    t.join(5)
                if seen():
                    return
                raise AssertionError(f"prefect-cycle exited ({self.popen.returncode}) before "
                                     f"printing {text!r}:\n{self.stdout[-3000:]}"
                                     f"\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"prefect-cycle did not print {text!r} within {timeout}s:"
                                     f"\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
            time.sleep(0.1)

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def terminate(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def finish(self, timeout: float = 300) -> CycleResult:
        """Waits for the exit; after `timeout`: stop() and AssertionError."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            for t in self._readers:
                t.join(5)
            raise AssertionError(f"prefect-cycle did not exit within {timeout}s:\n"
                                 f"{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
        for t in self._readers:
            t.join(10)
        summary = (json.loads(self.summary_path.read_text())
                   if self.summary_path.exists() else None)
        return CycleResult(self.popen.returncode, self.stdout, self.stderr, summary,
                           time.monotonic() - self.started, list(self.args))

    def stop(self, grace: float = 30) -> None:
        """Teardown: SIGTERM, `grace` seconds, SIGKILL (if still running)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Cycle:
    """Runs the prefect-cycle binary against `server` with a scrubbed
    environment (nothing inherited from the test process):

      PATH=<venv>/bin:/usr/local/bin:/usr/bin:/bin (so `prefect`/`python3` are
      the venv's), HOME=<tmp>, LANG, PREFECT_HOME=<tmp>/prefect-home,
      PREFECT_API_URL, PREFECT_WORK_POOL=<pool>, PREFECT_WORKER_PYTHON=<venv
      python>, PREFECT_WAIT_POLL_SECONDS=1, PREFECT_WORKER_CYCLE_LOG_LEVEL=debug,
      PREFECT_WORKER_CYCLE_LOG_FORMAT=text, PREFECT_CYCLE_SUMMARY_FILE=
      <tmp>/summary.json; then `overrides` (a value of None removes the
      variable). Info lines are on stdout, problems on stderr: check
      `result.output` for a log line.

    - run(pool, overrides, args=("run",), timeout=300) -> CycleResult
    - spawn(pool, overrides, args) -> CycleProcess (background; signals)
    - start(...) -> subprocess.Popen and finish(popen, started, args, timeout)
      (older API, kept for existing tests)
    """

    def __init__(self, server: PrefectServer, tmp: Path):
        self.server = server
        self.tmp = Path(tmp)
        self.spawned: list[CycleProcess] = []
        self.popens: list[subprocess.Popen] = []
        # Applied before each call's overrides (e.g. the worker_mode fixture's).
        self.extra_env: dict[str, str] = {}
        self.outputs: list[str] = []  # stdout + stderr of each run() / finish()

    @property
    def summary_path(self) -> Path:
        return self.tmp / "summary.json"

    def env(self, pool: str | None, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(self.tmp / "prefect-home"),
            "PREFECT_API_URL": self.server.api_url,
            # PC_E2E_WORKER_PYTHON: another interpreter with Prefect for the
            # flow runs (scripts/warm-pythons.sh --e2e uses a Python 3.12 venv).
            "PREFECT_WORKER_PYTHON": os.environ.get("PC_E2E_WORKER_PYTHON") or str(VENV_PYTHON),
            "PREFECT_WAIT_POLL_SECONDS": "1",
            "PREFECT_WORKER_CYCLE_LOG_LEVEL": "debug",
            # The tests read text lines; the default would be JSON wherever the
            # suite itself runs in a container (see default_log_format).
            "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text",
            "PREFECT_CYCLE_SUMMARY_FILE": str(self.summary_path),
        }
        if pool:
            env["PREFECT_WORK_POOL"] = pool
        for key, value in {**self.extra_env, **(overrides or {})}.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    def _popen(self, pool, overrides, args, hostname: str | None = None) -> subprocess.Popen:
        """`hostname`: run in a UTS namespace of its own with that hostname, as
        a new container or pod would (needs root and util-linux's unshare)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        if self.summary_path.exists():
            self.summary_path.unlink()
        argv = [str(binary_path()), *args]
        if hostname:
            unshare = shutil.which("unshare")
            if not unshare:
                raise RuntimeError("unshare not found: apt-get install util-linux")
            argv = [unshare, "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]
        return subprocess.Popen(
            argv, env=self.env(pool, overrides),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, errors="replace",
        )

    def start(self, pool: str | None, overrides: dict | None = None,
              args: Iterable[str] = ("run",)) -> subprocess.Popen:
        proc = self._popen(pool, overrides, list(args))
        self.popens.append(proc)
        return proc

    def all_output(self) -> str:
        """What every cycle of this test printed that the harness read."""
        return "\n".join(self.outputs + [p.stdout + p.stderr for p in self.spawned])

    def finish(self, proc: subprocess.Popen, started: float, args, timeout: float) -> CycleResult:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM first: the cycle then stops its flow runs and pauses the pool.
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            raise AssertionError(f"prefect-cycle did not exit within {timeout}s (stopped):\n"
                                 f"{err[-6000:]}")
        self.outputs.append(out + err)
        summary = json.loads(self.summary_path.read_text()) if self.summary_path.exists() else None
        return CycleResult(proc.returncode, out, err, summary, time.monotonic() - started, list(args))

    def spawn(self, pool: str | None, overrides: dict | None = None,
              args: Iterable[str] = ("run",), hostname: str | None = None) -> CycleProcess:
        args = list(args)
        started = time.monotonic()
        proc = CycleProcess(self._popen(pool, overrides, args, hostname), args,
                            self.summary_path, started)
        self.spawned.append(proc)
        return proc

    def run(self, pool: str | None, overrides: dict | None = None, args: Iterable[str] = ("run",),
            timeout: float = 300, hostname: str | None = None) -> CycleResult:
        args = list(args)
        started = time.monotonic()
        proc = self._popen(pool, overrides, args, hostname)
        return self.finish(proc, started, args, timeout)

    def cleanup(self) -> None:
        """Stops every spawned/started process still running (fixture
        teardown, e.g. after a failed assertion): SIGTERM, 30 s, SIGKILL."""
        for proc in self.spawned:
            proc.stop()
        for popen in self.popens:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.communicate()


class ConnectionRecorder:
    """A TCP listener on 127.0.0.1 that accepts and counts connections (and
    closes them at once). Use it as a PREFECT_API_URL that must never be
    contacted:

        with ConnectionRecorder() as rec:
            result = run_cycle({"PREFECT_API_URL": rec.url, ...})
        assert rec.connections == 0
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
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

    def __enter__(self) -> "ConnectionRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
