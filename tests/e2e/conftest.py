"""Fixtures: one real Prefect server per session, a fresh paused pool per test."""

import pytest

from harness import Cycle, Prefect, PrefectServer, binary_path


@pytest.fixture(scope="session")
def binary():
    """Path of the prefect-cycle binary (fails if it was not built)."""
    return binary_path()


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect server on 127.0.0.1 (throwaway home, SQLite)."""
    server = PrefectServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prefect(prefect_server):
    """Prefect's own client against the session server."""
    return Prefect(prefect_server)


@pytest.fixture
def pool(prefect):
    """A new paused work pool of type process."""
    return prefect.create_pool(paused=True)


@pytest.fixture
def cycle(prefect_server, tmp_path, binary):
    """Runs prefect-cycle against the session server: cycle.run(pool, {ENV: value})."""
    return Cycle(prefect_server, tmp_path)
