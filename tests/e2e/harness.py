"""Helpers for the end-to-end tests: a real Prefect server, pools, deployments,
flow runs, and running the prefect-cycle binary against them.

Everything talks to the real server through Prefect's own Python client, so a
test checks what Prefect itself sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
FLOWS_DIR = Path(__file__).resolve().parent / "flows"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary_path() -> Path:
    """The prefect-cycle binary: $PREFECT_CYCLE_BIN or build/prefect-cycle."""
    path = Path(os.environ.get("PREFECT_CYCLE_BIN", ROOT / "build" / "prefect-cycle"))
    if not path.exists():
        raise RuntimeError(f"{path} does not exist: run scripts/build.sh first")
    return path


class PrefectServer:
    """A real `prefect server start` on 127.0.0.1 with a throwaway home and SQLite."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        if not (VENV_BIN / "prefect").exists():
            raise RuntimeError(
                f"{VENV_BIN}/prefect not found: run scripts/setup.sh to create the venv "
                "with the pinned Prefect"
            )
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pc-prefect-home-"))
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.extra_env = extra_env or {}
        self.log_path = self.home / "server.log"
        self.process: subprocess.Popen | None = None

    def base_env(self) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
        return env

    def start(self, timeout: float = 120) -> "PrefectServer":
        env = self.base_env() | self.extra_env
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        import urllib.request

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except Exception:
                time.sleep(0.5)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"Prefect server did not become healthy in {timeout}s:\n{tail}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)

    def client_env(self) -> dict[str, str]:
        """Environment for Prefect's Python client (in this process) against this server."""
        env = {"PREFECT_API_URL": self.api_url}
        auth = self.extra_env.get("PREFECT_SERVER_API_AUTH_STRING")
        if auth:
            env["PREFECT_API_AUTH_STRING"] = auth
        return env


def _run(coro):
    return asyncio.run(coro)


def _retry(fn, attempts: int = 8):
    """Calls fn(); a fresh SQLite server can answer 503 under contention."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - the last one is raised
            if i == attempts - 1 or "503" not in str(e) and "locked" not in str(e):
                raise
            time.sleep(0.5 * (i + 1))


class Prefect:
    """Prefect's own client against one server, wrapped in plain functions."""

    def __init__(self, server: PrefectServer):
        self.server = server

    def _client(self):
        from prefect.client.orchestration import PrefectClient

        auth = self.server.extra_env.get("PREFECT_SERVER_API_AUTH_STRING")
        kwargs = {}
        if auth:
            import base64

            kwargs["httpx_settings"] = {
                "headers": {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
            }
        return PrefectClient(self.server.api_url, **kwargs)

    def call(self, method: str, *args, **kwargs):
        async def go():
            async with self._client() as c:
                return await getattr(c, method)(*args, **kwargs)

        return _retry(lambda: _run(go()))

    # --- pools
    def create_pool(self, name: str | None = None, paused: bool = True, type_: str = "process") -> str:
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.workers.process import ProcessWorker

        name = name or f"pool-{uuid.uuid4().hex[:8]}"
        template = ProcessWorker.get_default_base_job_template() if type_ == "process" else {}
        self.call("create_work_pool", WorkPoolCreate(
            name=name, type=type_, is_paused=paused, base_job_template=template))
        return name

    def pool(self, name: str):
        return self.call("read_work_pool", name)

    # --- deployments and runs
    def deploy(self, pool: str, entrypoint: str, name: str = "dep", flow_name: str | None = None,
               job_variables: dict | None = None) -> tuple[str, str]:
        """Deploys a flow from tests/e2e/flows ("file.py:func") into `pool`.

        Returns (deployment id, "flow-name/deployment-name")."""
        from prefect.client.schemas.actions import DeploymentCreate  # noqa: F401
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

    def schedule_runs(self, deployment_id: str, n: int, parameters: dict | None = None) -> list[str]:
        """n flow runs of the deployment, SCHEDULED and due now."""
        ids = []
        for _ in range(n):
            run = self.call("create_flow_run_from_deployment", deployment_id,
                            parameters=parameters or {})
            ids.append(str(run.id))
        return ids

    def run(self, run_id: str):
        return self.call("read_flow_run", uuid.UUID(run_id))

    def state_type(self, run_id: str) -> str:
        run = self.run(run_id)
        return run.state.type.value if run.state else "NONE"

    def states(self, run_id: str) -> list[str]:
        """The run's state history, oldest first, as type names."""
        history = self.call("read_flow_run_states", uuid.UUID(run_id))
        return [s.type.value for s in sorted(history, key=lambda s: s.timestamp)]


@dataclass
class CycleResult:
    returncode: int
    stdout: str
    stderr: str
    summary: dict | None
    duration: float
    args: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # shown by pytest on assertion failures
        return (f"exit {self.returncode} after {self.duration:.1f}s\n--- stdout\n{self.stdout[-4000:]}"
                f"\n--- stderr\n{self.stderr[-6000:]}")


class Cycle:
    """Runs the prefect-cycle binary with a scrubbed environment."""

    def __init__(self, server: PrefectServer, tmp: Path):
        self.server = server
        self.tmp = tmp

    def env(self, pool: str | None, overrides: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(self.tmp / "prefect-home"),
            "PREFECT_API_URL": self.server.api_url,
            "PREFECT_WORKER_PYTHON": str(VENV_BIN / "python"),
            "PREFECT_WAIT_POLL_SECONDS": "1",
            "PREFECT_WORKER_CYCLE_LOG_LEVEL": "debug",
            "PREFECT_CYCLE_SUMMARY_FILE": str(self.tmp / "summary.json"),
        }
        if pool:
            env["PREFECT_WORK_POOL"] = pool
        for key, value in (overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def start(self, pool: str | None, overrides: dict | None = None,
              args: Iterable[str] = ("run",)) -> subprocess.Popen:
        summary = self.tmp / "summary.json"
        if summary.exists():
            summary.unlink()
        return subprocess.Popen(
            [str(binary_path()), *args], env=self.env(pool, overrides),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )

    def finish(self, proc: subprocess.Popen, started: float, args, timeout: float) -> CycleResult:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"prefect-cycle did not exit within {timeout}s:\n{err[-4000:]}")
        summary_path = self.tmp / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        return CycleResult(proc.returncode, out, err, summary, time.monotonic() - started, list(args))

    def run(self, pool: str | None, overrides: dict | None = None, args: Iterable[str] = ("run",),
            timeout: float = 300) -> CycleResult:
        args = list(args)
        started = time.monotonic()
        proc = self.start(pool, overrides, args)
        return self.finish(proc, started, args, timeout)
