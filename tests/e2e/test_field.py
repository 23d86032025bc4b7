"""The conditions users run the cycle in (issue 16): Railway's log viewer, a new
container and hostname on every run, an interpreter without Prefect, long
silent flows, the flags people type."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import binary_path, kill_like_a_dead_container, wait_for

# JSON as on Railway: the variable that Railway sets, and no explicit format.
RAILWAY = {"RAILWAY_ENVIRONMENT_NAME": "production", "PREFECT_WORKER_CYCLE_LOG_FORMAT": None}


def _json_lines(text: str, stream: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"a line on {stream} is not JSON ({e}): {line!r}") from None
    return lines


def test_json_logs_of_a_failed_cycle_as_railway_reads_them(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:fails")
    [run] = prefect.schedule_runs(deployment_id, 1)

    result = cycle.run(pool, RAILWAY)

    assert result.returncode == 1, result
    out = _json_lines(result.stdout, "stdout")
    err = _json_lines(result.stderr, "stderr")
    assert out and err, result
    for line in out + err:
        assert line["level"] in ("debug", "info", "warn", "error"), line
        assert isinstance(line["message"], str), line
    # Problems on stderr, the rest on stdout.
    assert {line["level"] for line in out} <= {"debug", "info"}, result
    assert {line["level"] for line in err} <= {"warn", "error"}, result
    # The flow's own ERROR line keeps its level, with its traceback in the same event.
    flow_errors = [line for line in err
                   if line.get("flow_run_id") == run and "| ERROR" in line["message"]]
    assert flow_errors, result
    assert any("Traceback (most recent call last):" in line["message"]
               and "ValueError" in line["message"] for line in flow_errors), flow_errors
    # The last line carries the outcome: an error with a numeric exit code.
    last = err[-1]
    assert last["level"] == "error", last
    assert last["exit_code"] == 1 and isinstance(last["exit_code"], int), last
    assert "cycle finished: exit 1" in last["message"], last
    assert prefect.pool(pool).is_paused


def test_a_healthy_cycle_writes_nothing_but_problems_on_stderr(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    prefect.schedule_runs(deployment_id, 2)

    result = cycle.run(pool, RAILWAY)

    assert result.returncode == 0, result
    out = _json_lines(result.stdout, "stdout")
    err = _json_lines(result.stderr, "stderr")
    assert out[-1]["level"] == "info" and out[-1]["exit_code"] == 0, out[-1]
    # Only problems (a busy SQLite server's 503 may give one) are on stderr.
    assert all(line["level"] in ("warn", "error") for line in err), err


@pytest.mark.usefixtures("worker_mode")
def test_runs_of_a_killed_cycle_in_another_container_are_recovered(prefect, pool, cycle, tmp_path):
    """Cycle A runs on host "ctr-a" with the default worker name and is killed
    with its flows, as a container is; cycle C on "ctr-c" is alive with a run.
    Cycle B, in a new "container" with its own hostname and default name,
    marks A's runs CRASHED and leaves C's run alone."""
    fast = {"PREFECT_WORKER_HEARTBEAT_SECONDS": "1", "PREFECT_WORKER_NAME": None}
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    a_runs = prefect.schedule_runs(deployment_id, 2, {"seconds": 300})
    a = cycle.spawn(pool, fast | {"PREFECT_CYCLE_SUMMARY_FILE": str(tmp_path / "a.json")},
                    hostname="ctr-a")

    def running(runs):
        found = [prefect.run(r) for r in runs]
        return all(f.state.type.value == "RUNNING" and f.infrastructure_pid
                   for f in found) and found

    found = wait_for(lambda: running(a_runs), 90, "cycle A's runs to be RUNNING")
    assert all(f.infrastructure_pid.startswith("ctr-a:") for f in found), found
    kill_like_a_dead_container(a.popen, [int(f.infrastructure_pid.split(":")[-1]) for f in found])

    # A live cycle on another host, with a run of its own.
    [c_run] = prefect.schedule_runs(deployment_id, 1, {"seconds": 300})
    c = cycle.spawn(pool, fast | {"PREFECT_CYCLE_SUMMARY_FILE": str(tmp_path / "c.json")},
                    hostname="ctr-c")
    wait_for(lambda: running([c_run]), 90, "cycle C's run to be RUNNING")
    time.sleep(4)  # A's row is now silent for more than three intervals

    b = cycle.run(pool, fast | {"PREFECT_WAIT_FOR_COMPLETION": "false",
                                "PREFECT_CYCLE_SUMMARY_FILE": str(tmp_path / "b.json")},
                  hostname="ctr-b")

    assert b.returncode == 0, b
    for r in a_runs:
        state = prefect.run(r).state
        assert state.type.value == "CRASHED", (r, state)
        assert state.message.startswith("prefect-cycle found this flow run stale: "), state.message
        assert ('prefect-cycle worker "prefect-cycle-ctr-a", which claimed it, stopped '
                'heartbeating' in state.message), state.message
    assert prefect.state_type(c_run) == "RUNNING", "a live worker's run was touched"
    assert "stale flow run" in b.output

    c.send_signal(signal.SIGTERM)
    c_result = c.finish(timeout=120)
    assert c_result.returncode == 143, c_result
    assert prefect.state_type(c_run) == "CRASHED"
    assert prefect.pool(pool).is_paused


def test_an_interpreter_without_prefect_stops_the_cycle_before_the_pool_is_resumed(
        prefect, pool, cycle, tmp_path):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run] = prefect.schedule_runs(deployment_id, 1)
    # A python3 that sees no site-packages: Prefect cannot be found.
    bare = tmp_path / "bare-python3"
    bare.write_text("#!/bin/sh\nexec /usr/bin/python3 -I -S \"$@\"\n")
    bare.chmod(0o755)

    result = cycle.run(pool, {"PREFECT_WORKER_PYTHON": str(bare)})

    assert result.returncode == 4, result
    assert (f'PREFECT_WORKER_PYTHON: "{bare}" cannot run flow runs (exit code 3: No module named '
            'prefect); fix: set PREFECT_WORKER_PYTHON (--python)') in result.stderr, result
    assert prefect.pool(pool).is_paused
    assert result.summary["pool_resumed"] is False, result.summary
    assert prefect.state_type(run) == "SCHEDULED"


def test_a_long_silent_flow_shows_as_alive(prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
    prefect.schedule_runs(deployment_id, 1, {"seconds": 6})

    result = cycle.run(pool, {"PREFECT_WAIT_POLL_SECONDS": "2"})

    assert result.returncode == 0, result
    progress = [line for line in result.stdout.splitlines() if "flow run(s) running:" in line]
    assert len(progress) >= 2, result
    assert "1 flow run(s) running: " in progress[-1] and "0 queued, 0 done" in progress[-1]


def test_flags_people_type():
    binary = str(binary_path())
    env = {"PATH": "/usr/bin:/bin", "PREFECT_API_URL": "http://127.0.0.1:9/api"}

    def run(*args):
        return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=30)

    for flag in ("--version", "-V"):
        version = run(flag)
        assert version.returncode == 0 and version.stdout.startswith("prefect-cycle "), version
    help_text = run("--help").stdout
    assert "-l,--limit INT=5" in help_text and "-p,--pool TEXT" in help_text, help_text
    assert "--drain BOOL=false" in help_text and "--no-drain turns it off" in help_text

    def shown(args, variable):
        config = run(*args, "config")
        assert config.returncode == 0, config
        [line] = [l for l in config.stdout.splitlines() if l.startswith(variable + " ")]
        return line.split()[1]

    assert shown(["--drain"], "PREFECT_CYCLE_DRAIN") == "true"
    assert shown(["--drain", "false"], "PREFECT_CYCLE_DRAIN") == "false"
    assert shown(["--drain=off"], "PREFECT_CYCLE_DRAIN") == "false"
    assert shown(["--no-drain"], "PREFECT_CYCLE_DRAIN") == "false"
    assert shown(["-p", "etl", "-l", "3"], "PREFECT_WORK_POOL") == "etl"
    assert shown(["-l", "3"], "PREFECT_WORKER_FLOW_LIMIT") == "3"
    bad = run("--drain=maybe", "config")
    assert bad.returncode == 2 and "--drain" in bad.stderr and "maybe" in bad.stderr, bad
