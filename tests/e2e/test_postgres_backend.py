"""The same cycles against a Prefect server on PostgreSQL, as production
servers (the Railway Prefect template included) run it (issue 18).

The rest of the suite runs against the session's SQLite server. This module
gives `prefect_server` and `prefect` a server whose database is a real
PostgreSQL (tests/e2e/pg_server.py) and re-runs a subset of the suite's own
tests against it (listed below). The subset, not everything, keeps the test
command inside its 45-minute budget (each test here costs what it costs on
SQLite); the whole suite runs against PostgreSQL with
`PC_E2E_POSTGRES_ALL=1 .venv/bin/python -m pytest tests/e2e`."""

from __future__ import annotations

import pytest

from pathlib import Path

from harness import Prefect

# The tests to run again, imported under their own names: pytest collects them
# here, where the fixtures below replace the session's SQLite server. One or
# two of each kind, the quick ones: a cycle with runs, a failing flow, a
# worker exit code, a stale run on this host and across "containers", a
# permanent API fault while waiting (through the fault proxy), the load test.
from test_cycle import (  # noqa: F401
    test_failing_flow_exits_1,
    test_paused_pool_with_three_due_runs_completes_and_pauses,
)
from test_faults import (  # noqa: F401
    proxy,
    test_permanent_failure_of_the_count_ends_the_wait_with_exit_3,
)
from test_field import test_runs_of_a_killed_cycle_in_another_container_are_recovered  # noqa: F401
from test_load import test_cheap_runs_limit_20  # noqa: F401
from test_stale import test_next_cycle_crashes_runs_whose_process_is_gone  # noqa: F401
from test_worker import test_hard_exit_is_crashed_with_the_exit_code  # noqa: F401


@pytest.fixture(scope="module")
def prefect_server(pg_prefect_server):
    """The session's PostgreSQL-backed Prefect server (conftest.py)."""
    return pg_prefect_server


@pytest.fixture(scope="module")
def prefect(prefect_server):
    return Prefect(prefect_server)


def test_the_server_really_runs_on_postgres(prefect_server):
    """Guards the module: a server that fell back to SQLite would make every
    test above a repetition."""
    url = prefect_server.extra_env.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    assert url.startswith("postgresql+asyncpg://") and "@127.0.0.1:" in url, url
    home = prefect_server.home
    assert not list(Path(home).glob("**/*.db")), "the server made a SQLite database"
