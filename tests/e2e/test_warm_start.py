"""Warm start (issue 19): the launcher (src/worker/launch/zygote.py) on its
own, its protocol driven from Python (warm_driver.py plays the cycle's side),
then whole cycles with PREFECT_CYCLE_WARM_START — real flow runs run by
Prefect's engine against the real server. The worker's other e2e tests run in
both modes through the worker_mode fixture."""

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fault_proxy import FaultProxy
from harness import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "src" / "worker" / "launch" / "zygote.py"
DRIVER = Path(__file__).with_name("warm_driver.py")
FLOWS_DIR = Path(__file__).with_name("flows")
PYTHON = str(VENV_BIN / "python")


@pytest.fixture
def preloads(tmp_path):
    """A directory (for PYTHONPATH) with a module that starts a thread at
    import (spins_a_thread) and one that fails to import (broken_dep)."""
    (tmp_path / "spins_a_thread.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    (tmp_path / "broken_dep.py").write_text("raise ImportError('no such wheel')\n")
    return str(tmp_path)


def drive(prefect_server, runs, preload="", extra_env=None, timeout=180):
    env = dict(prefect_server.env())
    env.update(extra_env or {})
    done = subprocess.run([sys.executable, str(DRIVER), PYTHON, str(LAUNCHER), preload,
                           json.dumps(runs)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def claimed_runs(prefect, deployment_id, n, parameters=None):
    """n runs of the deployment proposed PENDING, as the worker would."""
    from prefect.states import Pending

    ids = prefect.schedule_runs(deployment_id, n, parameters)
    for run_id in ids:
        prefect.call("set_flow_run_state", uuid.UUID(run_id), Pending())
    return ids


def job(prefect_server, run_id, **env):
    base = dict(prefect_server.env())
    base.update(env)
    base["PREFECT__FLOW_RUN_ID"] = run_id
    return {"id": run_id, "env": base, "cwd": str(FLOWS_DIR)}


def test_forked_runs_end_as_cold_ones_and_are_our_children(prefect, prefect_server, pool):
    ok_dep, _ = prefect.deploy(pool, "flows.py:hello", name="ok")
    fail_dep, _ = prefect.deploy(pool, "flows.py:fails", name="fails")
    exit_dep, _ = prefect.deploy(pool, "flows.py:hard_exit", name="exit")
    ok = claimed_runs(prefect, ok_dep, 2)
    failing = claimed_runs(prefect, fail_dep, 1)
    exiting = claimed_runs(prefect, exit_dep, 1, {"code": 3})
    result, stderr = drive(prefect_server,
                           [job(prefect_server, r) for r in ok + failing + exiting])
    assert result["hello"]["type"] == "ready", (result, stderr)
    runs = result["runs"]
    assert set(runs) == set(ok + failing + exiting), (result, stderr)
    for run_id, run in runs.items():
        assert run["ppid_was_us"], f"{run_id} was not re-parented to the subreaper: {run}"
    for run_id in ok:
        assert runs[run_id]["code"] == 0, runs[run_id]
        assert "hello world" in runs[run_id]["stdout"] + runs[run_id]["stderr"], runs[run_id]
        assert prefect.state_type(run_id) == "COMPLETED"
    assert prefect.state_type(failing[0]) == "FAILED"
    # The same exit code as Prefect's engine in a fresh interpreter gives.
    [cold] = claimed_runs(prefect, fail_dep, 1)
    cold_env = job(prefect_server, cold)["env"]
    cold_exit = subprocess.run([PYTHON, "-m", "prefect.engine"], env=cold_env, cwd=FLOWS_DIR,
                               capture_output=True, timeout=120).returncode
    assert runs[failing[0]]["code"] == cold_exit, (runs[failing[0]], cold_exit)
    assert prefect.state_type(cold) == "FAILED"
    assert runs[exiting[0]]["code"] == 3, runs[exiting[0]]
    assert len({run["pid"] for run in runs.values()}) == len(runs)
    assert result["launcher_exit"] == 0


def test_the_runs_environment_wins_over_the_launchers(prefect, prefect_server, pool):
    dep, _ = prefect.deploy(pool, "flows.py:show_env", name="env")
    [run_id] = claimed_runs(prefect, dep, 1, {"names": ["PREFECT_LOGGING_LEVEL", "JOB_ONLY"]})
    # The launcher starts at INFO; the run's own environment asks for DEBUG.
    result, stderr = drive(prefect_server,
                           [job(prefect_server, run_id, PREFECT_LOGGING_LEVEL="DEBUG",
                                JOB_ONLY="from-the-job")],
                           extra_env={"PREFECT_LOGGING_LEVEL": "INFO"})
    run = result["runs"][run_id]
    output = run["stdout"] + run["stderr"]
    assert run["code"] == 0, (run, stderr)
    assert "from-the-job" in output, output
    assert "| DEBUG   |" in output, f"PREFECT_LOGGING_LEVEL=DEBUG did not take effect:\n{output}"
    assert prefect.state_type(run_id) == "COMPLETED"


def test_a_preload_that_starts_a_thread_is_refused_by_name(prefect_server, preloads):
    result, _ = drive(prefect_server, [], preload="json,spins_a_thread",
                      extra_env={"PYTHONPATH": preloads})
    assert result["hello"]["type"] == "unsafe", result
    assert "spins_a_thread started 1 thread" in result["hello"]["reason"], result


def test_a_preload_that_fails_is_a_warning_and_the_launcher_goes_on(prefect_server, preloads):
    result, _ = drive(prefect_server, [], preload="broken_dep,not_installed_anywhere",
                      extra_env={"PYTHONPATH": preloads})
    assert result["hello"]["type"] == "ready", result
    warnings = " ".join(result["hello"]["warnings"])
    assert "broken_dep failed (ImportError: no such wheel)" in warnings, warnings
    assert "not_installed_anywhere failed (ModuleNotFoundError" in warnings, warnings


# ----------------------------------------------------------------- whole cycles

WARM = {"PREFECT_CYCLE_WARM_START": "true"}


def two_runs_warm(prefect, pool, cycle, preload, pythonpath):
    """A warm cycle preloading `preload` over two hello runs; they must
    complete either way."""
    dep, _ = prefect.deploy(pool, "flows.py:hello")
    runs = prefect.schedule_runs(dep, 2)
    result = cycle.run(pool, WARM | {"PREFECT_CYCLE_PRELOAD_MODULES": preload,
                                     "PYTHONPATH": pythonpath})
    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 2
    return result


def test_a_preload_that_starts_a_thread_makes_the_cycle_start_runs_cold(prefect, pool, cycle,
                                                                        preloads):
    result = two_runs_warm(prefect, pool, cycle, "spins_a_thread", preloads)
    assert result.output.count("warm start off, flow runs start cold: importing "
                               "spins_a_thread started 1 thread") == 1, result.output
    assert "launcher ready" not in result.output


def test_a_preload_that_fails_is_a_warning_and_runs_are_still_forked(prefect, pool, cycle,
                                                                     preloads):
    result = two_runs_warm(prefect, pool, cycle, "broken_dep,json", preloads)
    assert "preloading broken_dep failed (ImportError: no such wheel)" in result.stderr, result
    assert "warm start: launcher ready" in result.output, result.output
    assert "warm start off" not in result.output, result.output


def test_the_jobs_logging_level_and_api_url_take_effect_in_a_warm_run(prefect, prefect_server,
                                                                     pool, cycle):
    """The launcher imported Prefect with the cycle's environment; the run's
    own PREFECT_LOGGING_LEVEL and PREFECT_API_URL (here: through a proxy that
    records what passes) must win, as in a fresh interpreter."""
    proxy = FaultProxy(prefect_server.api_url).start()
    try:
        dep, _ = prefect.deploy(pool, "flows.py:hello", job_variables={
            "env": {"PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_API_URL": proxy.api_url}})
        [run] = prefect.schedule_runs(dep, 1)
        result = cycle.run(pool, WARM | {"PREFECT_LOGGING_LEVEL": "INFO"})
    finally:
        proxy.stop()
    assert result.returncode == 0, result
    assert prefect.state_type(run) == "COMPLETED"
    assert "warm start: launcher ready" in result.output, result.output
    assert re.search(r"\| DEBUG +\|", result.output), "the job's DEBUG level did not take effect"
    through_proxy = [path for _, path, _ in proxy.log if run in path]
    assert through_proxy, f"the run's engine did not use the job's PREFECT_API_URL: {proxy.log}"


def test_a_launcher_killed_mid_cycle_loses_no_run(prefect, pool, cycle):
    dep, _ = prefect.deploy(pool, "flows.py:sleeper")
    runs = prefect.schedule_runs(dep, 3, {"seconds": 3})
    proc = cycle.spawn(pool, WARM | {"PREFECT_WORKER_FLOW_LIMIT": "1"})
    proc.wait_for_output("warm start: launcher ready", timeout=120)
    launcher = int(re.search(r"launcher ready \(pid (\d+)\)", proc.stdout).group(1))
    os.kill(launcher, signal.SIGKILL)
    result = proc.finish(timeout=300)
    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 3
    # The run forked before the kill was supervised to its end; the later ones
    # started cold, said once.
    assert result.output.count("warm start off, flow runs start cold") == 1, result.output
