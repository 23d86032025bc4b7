"""Fixtures of the end-to-end suite: ONE real Prefect server per session, a
fresh paused process pool per test, and the prefect-cycle binary run against
them with a scrubbed environment. The classes behind them are in harness.py.

Session:
  binary          Path of the binary under test (PREFECT_CYCLE_BIN or
                  build/prefect-cycle, snapshotted once). Fails if missing.
  prefect_server  harness.PrefectServer: .api_url (".../api"), .port, .home,
                  .env() (PREFECT_API_URL etc. for Prefect's client/CLI),
                  .log_path, .startup_seconds.
  prefect         harness.Prefect: Prefect's own client against it (pools,
                  deployments, runs, states; see its docstring).
Per test:
  pool            name of a new, unique, PAUSED work pool of type process
                  (Prefect's default process base job template).
  deploy          deploy(pool, flow_file, func, name="dep", flow_name=None,
                  job_variables=None) -> (deployment_id, "flow/deployment");
                  flows live in tests/e2e/flows/ (e.g. "flows.py", "hello").
  schedule_runs   schedule_runs(deployment_id, n, parameters=None) -> [run id],
                  SCHEDULED and due now.
  cycle           harness.Cycle for this test's tmp dir (run/spawn with an
                  explicit pool); spawned processes are stopped at teardown.
  run_cycle       run_cycle(env_overrides=None, args=("run",), timeout=300,
                  pool=None) -> harness.CycleResult (.returncode, .stdout,
                  .stderr, .summary, .duration). pool defaults to the test's
                  `pool` fixture if the test uses it.
  start_cycle     same arguments (no timeout) -> harness.CycleProcess, for
                  signal tests: .wait_for_output(text), .send_signal(sig),
                  .finish(timeout) -> CycleResult.
Module (started only by tests that ask for them):
  auth_prefect_server  a second server with PREFECT_SERVER_API_AUTH_STRING=
                  AUTH_STRING ("user:pass"); auth_prefect: its client.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# The test process talks to the servers through explicit URLs only: nothing
# from the developer's Prefect profile or environment (a Cloud key, another
# PREFECT_API_URL, ~/.prefect) may leak into the suite.
for _name in [n for n in os.environ if n.startswith("PREFECT_") and n != "PREFECT_CYCLE_BIN"]:
    del os.environ[_name]
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="pc-e2e-client-home-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# Loopback servers are never reached through a developer's HTTP proxy.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get(_name)]))

from harness import (  # noqa: E402 - after the environment is scrubbed
    AUTH_STRING,
    Cycle,
    Prefect,
    PrefectServer,
    binary_path,
    require_venv,
)


def _server(extra_env):
    """Starts a PrefectServer, yields it, stops it; a failed start fails the test."""
    problem = None
    try:
        require_venv()
        server = PrefectServer(extra_env).start()
    except RuntimeError as e:
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def binary():
    """Path of the prefect-cycle binary; fails the test if it was not built."""
    problem = None
    try:
        return binary_path()
    except RuntimeError as e:
        problem = str(e)
    pytest.fail(problem, pytrace=False)


def _postgres_server(extra_env=None):
    """A Prefect server whose database is a real PostgreSQL (pg_server.py), as
    production servers run it, with `extra_env` (server settings); both
    stopped at the end."""
    from pg_server import PostgresServer

    problem, pg = None, None
    try:
        pg = PostgresServer().start()
    except RuntimeError as e:
        problem = f"{e} (Debian's postgresql package: scripts/setup.sh installs it)"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield from _server({"PREFECT_API_DATABASE_CONNECTION_URL":
                            f"postgresql+asyncpg://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/"
                            f"{pg.database}", **(extra_env or {})})
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def pg_prefect_server():
    """One PostgreSQL-backed Prefect server for the session, started by the first
    test that asks (test_postgres_backend.py, test_multihost.py)."""
    yield from _postgres_server()


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect server on 127.0.0.1 (throwaway home, SQLite), for the session.
    With PC_E2E_POSTGRES_ALL=1 its database is a real PostgreSQL instead, so the
    whole suite runs against that backend (test_postgres_backend.py runs a
    subset against PostgreSQL in every run)."""
    if os.environ.get("PC_E2E_POSTGRES_ALL") == "1":
        yield from _postgres_server()
    else:
        yield from _server({})


@pytest.fixture(scope="session")
def prefect(prefect_server):
    """Prefect's own client against the session server (harness.Prefect)."""
    return Prefect(prefect_server)


@pytest.fixture
def pool(prefect):
    """A new, uniquely named, paused work pool of type process; its name."""
    return prefect.create_pool(paused=True)


@pytest.fixture
def deploy(prefect):
    """deploy(pool, flow_file, func, name="dep", flow_name=None, job_variables=None)
    -> (deployment_id, "flow-name/deployment-name")."""
    return prefect.deploy_flow


@pytest.fixture
def schedule_runs(prefect):
    """schedule_runs(deployment_id, n, parameters=None) -> [flow run id] due now."""
    return prefect.schedule_runs


@pytest.fixture
def cycle(binary, prefect_server, tmp_path):
    """Runs prefect-cycle against the session server: cycle.run(pool, {ENV: value})."""
    c = Cycle(prefect_server, tmp_path)
    yield c
    c.cleanup()


@pytest.fixture(params=["cold", "warm"])
def worker_mode(request, cycle):
    """Runs the test twice: flow runs spawned cold, and forked from the warm
    launcher (PREFECT_CYCLE_WARM_START). Opt in with
    `pytestmark = pytest.mark.usefixtures("worker_mode")` or per test."""
    cycle.extra_env["PREFECT_CYCLE_WARM_START"] = "true" if request.param == "warm" else "false"
    yield request.param
    # Proof that the mode was the one asked for, wherever a run was started.
    output = cycle.all_output()
    if "started: " not in output:
        return
    if request.param == "warm":
        # (or the fallback of a run whose command is not Prefect's engine)
        assert ("warm start: launcher ready" in output
                or "such runs start cold" in output), output[-4000:]
        assert "warm start off" not in output, output[-4000:]
    else:
        assert "warm start" not in output, output[-4000:]


def _default_pool(request, pool):
    if pool is None and "pool" in request.fixturenames:
        pool = request.getfixturevalue("pool")
    return pool


@pytest.fixture
def run_cycle(cycle, request):
    """run_cycle(env_overrides=None, args=("run",), timeout=300, pool=None) -> CycleResult."""
    def run(env_overrides=None, args=("run",), timeout=300, pool=None):
        return cycle.run(_default_pool(request, pool), env_overrides, args, timeout)
    return run


@pytest.fixture
def start_cycle(cycle, request):
    """start_cycle(env_overrides=None, args=("run",), pool=None) -> CycleProcess."""
    def start(env_overrides=None, args=("run",), pool=None):
        return cycle.spawn(_default_pool(request, pool), env_overrides, args)
    return start


@pytest.fixture(scope="module")
def auth_prefect_server():
    """A second Prefect server that requires PREFECT_SERVER_API_AUTH_STRING=AUTH_STRING."""
    yield from _server({"PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING})


@pytest.fixture(scope="module")
def auth_prefect(auth_prefect_server):
    """Prefect's client against auth_prefect_server (sends the auth string)."""
    return Prefect(auth_prefect_server)
