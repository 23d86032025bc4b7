"""Issue 33, part 3: a paused pool shown as "Not Ready".

Prefect's Foreman service marks a READY pool with no ONLINE worker NOT_READY:
it selects such pools, then updates each. A cycle deletes its worker row and
then pauses the pool; when the pause commits between the Foreman's select and
its update, the update writes NOT_READY over PAUSED (is_paused stays true).
The cycle reads the pool back after the pause and pauses it again while its
status is not PAUSED.

The server here runs on PostgreSQL (where the race was seen in CI; on SQLite
the Foreman's read transaction cannot write after another writer committed)
with the Foreman's loop at PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS
(default 15 s) = 0.05 s, so that it is between its select and its update
often. Each cycle runs one cheap due run (its worker heartbeats, so the pool
is READY until the pause); after each, the status is read twice, the second
time past several Foreman loops, so a late overwrite shows too.

The test command runs PC_FOREMAN_CYCLES cycles (default 5); the acceptance
run is 20: `PC_FOREMAN_CYCLES=20 .venv/bin/python -m pytest -p no:cacheprovider
-q tests/e2e/test_foreman_race.py`."""

from __future__ import annotations

import os
import time

import pytest

from harness import Prefect

CYCLES = int(os.environ.get("PC_FOREMAN_CYCLES", "5"))
FOREMAN_LOOP_SECONDS = 0.05
# A cheap run that reports COMPLETED through the API, as a flow would.
COMPLETING = (
    "sh -c 'curl -sf --retry 8 --retry-all-errors -X POST "
    "\"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{\\\"state\\\":{\\\"type\\\":\\\"COMPLETED\\\"},\\\"force\\\":true}\" >/dev/null'"
)


@pytest.fixture(scope="module")
def prefect_server():
    """A PostgreSQL-backed server whose Foreman loops every 0.05 s."""
    from conftest import _postgres_server

    yield from _postgres_server(
        {"PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": str(FOREMAN_LOOP_SECONDS)})


@pytest.fixture(scope="module")
def prefect(prefect_server):
    return Prefect(prefect_server)


def test_the_pool_ends_paused_after_every_cycle_under_a_busy_foreman(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello", job_variables={"command": COMPLETING})
    statuses, repaused = [], 0
    for i in range(CYCLES):
        [run] = prefect.schedule_runs(deployment_id, 1)
        result = cycle.run(pool, {"PREFECT_WORKER_HEARTBEAT_SECONDS": "5"})
        assert result.returncode == 0, result.output[-3000:]
        assert prefect.state_type(run) == "COMPLETED", result.output[-3000:]
        at_exit = prefect.pool_status(pool)
        time.sleep(20 * FOREMAN_LOOP_SECONDS)
        later = prefect.pool_status(pool)
        statuses.append((i, at_exit, later))
        repaused += "its status is not PAUSED" in result.output
    print(f"{CYCLES} cycles, the pause made again after the Foreman in {repaused}")
    wrong = [s for s in statuses if s[1] != (True, "PAUSED") or s[2] != (True, "PAUSED")]
    assert not wrong, (wrong, f"repaused in {repaused} of {CYCLES}")
