"""The oldest supported Prefect server in every test run (issue 18): Prefect
2.20's own server, in a venv of its own, driven by scripts/compat.sh (its
own client creates pools, deployments and runs; the binary runs an empty
cycle, two runs, a --trigger cycle, a stale run of a killed cycle on another
"host", and doctor). The newest supported server (3.8.8) is the rest of the
suite. The whole matrix (2.20, 3.0, 3.4, 3.8) is `scripts/compat.sh`."""

import json
import os
import subprocess

from harness import ROOT, binary_path

OLDEST = "2.20.27"
SCENARIOS = ("versions", "routes", "client_ops", "empty_pool", "two_runs", "trigger", "stale", "doctor")


def test_the_oldest_supported_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_CYCLE_BIN"] = str(binary_path())
    env["COMPAT_DIR"] = str(ROOT / ".cache" / "compat")  # the venv is kept between runs
    result = subprocess.run(["bash", str(ROOT / "scripts" / "compat.sh"), OLDEST], env=env,
                            capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    results = json.loads((ROOT / ".cache" / "compat" / "results" / f"{OLDEST}.json").read_text())
    failed = {name: value for name, value in results.items()
              if isinstance(value, dict) and not value.get("ok")}
    assert not failed, (failed, output)
    missing = [name for name in SCENARIOS if name not in results]
    assert not missing, (missing, sorted(results))
