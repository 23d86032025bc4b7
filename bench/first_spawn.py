#!/usr/bin/env python3
"""Time from start to the first flow-run process, and the controller's peak RSS:
prefect-cycle's native worker next to Prefect's worker CLI (issue 3's note).

    .venv/bin/python bench/first_spawn.py [repeats]     (default 5)

Starts a local Prefect server (tests/e2e/harness.py). For each repeat and
contender, alternating: a fresh process pool, one deployment of
tests/e2e/flows/flows.py:hello whose job `command` is a tiny shell script that
writes the time it was exec'd (ns since the epoch) and then execs
`python -m prefect.engine`, one due run. Measured from just before the
controller is spawned:
  first spawn   when the shell script ran (the worker's child exec'd),
  peak RSS      VmHWM of the controller process, read every 5 ms until it exits.
Contenders:
  prefect-cycle   `prefect-cycle run` (resume, heartbeat, poll, claim, spawn,
                  wait, pause): everything before the spawn is counted;
  prefect worker  `prefect worker start --pool P --type process --run-once
                  --limit 1` with the pool already resumed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import VENV_BIN, Prefect, PrefectServer, binary_path, proc_status_kib  # noqa: E402


def run_measured(argv: list[str], env: dict[str, str], stamp: Path) -> tuple[float, int, int]:
    """(seconds to first spawn, peak RSS KiB, exit code)."""
    peak = 0
    started = time.time()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc_status_kib(proc.pid, "VmHWM"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = proc.wait(timeout=300)
    done.set()
    sampler.join()
    spawned = int(stamp.read_text().split()[0]) / 1e9
    return spawned - started, peak, code


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    server = PrefectServer().start()
    prefect = Prefect(server)
    work = Path(tempfile.mkdtemp(prefix="pc-first-spawn-"))
    stamp = work / "spawned"
    script = work / "stamp.sh"
    script.write_text(f'#!/bin/sh\ndate +%s%N > {stamp}\nexec {VENV_BIN}/python -m prefect.engine\n')
    script.chmod(0o755)
    base = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
            "PREFECT_HOME": str(work / "home"), "PREFECT_API_URL": server.api_url}
    results: dict[str, list[tuple[float, int]]] = {"prefect-cycle": [], "prefect worker": []}
    try:
        for _ in range(repeats):
            for name in results:
                pool = prefect.create_pool(paused=(name == "prefect-cycle"))
                deployment_id, _ = prefect.deploy(pool, "flows.py:hello",
                                                  job_variables={"command": str(script)})
                [run] = prefect.schedule_runs(deployment_id, 1)
                stamp.unlink(missing_ok=True)
                if name == "prefect-cycle":
                    argv = [str(binary_path()), "run"]
                    env = base | {"PREFECT_WORK_POOL": pool,
                                  "PREFECT_WORKER_PYTHON": str(VENV_BIN / "python")}
                else:
                    argv = [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool,
                            "--type", "process", "--run-once", "--limit", "1"]
                    env = base
                seconds, peak, code = run_measured(argv, env, stamp)
                state = prefect.wait_for_state(run, ["COMPLETED", "FAILED", "CRASHED"], 60)
                if code != 0 or state != "COMPLETED":
                    raise SystemExit(f"{name}: exit {code}, run {state}")
                results[name].append((seconds, peak))
    finally:
        server.stop()

    print(f"{'controller':16} {'first spawn s (median [min..max])':36} {'peak RSS MiB (median)':>22}")
    medians = {}
    for name, rows in results.items():
        spawn = [s for s, _ in rows]
        rss = [p / 1024 for _, p in rows]
        medians[name] = (statistics.median(spawn), statistics.median(rss))
        print(f"{name:16} {medians[name][0]:6.3f} [{min(spawn):.3f}..{max(spawn):.3f}]"
              f"{'':14} {medians[name][1]:10.1f}")
    ours, theirs = medians["prefect-cycle"], medians["prefect worker"]
    print(f"ratio (prefect worker / prefect-cycle): first spawn {theirs[0] / ours[0]:.1f}x, "
          f"peak RSS {theirs[1] / ours[1]:.1f}x  ({repeats} repeats each, alternating)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
