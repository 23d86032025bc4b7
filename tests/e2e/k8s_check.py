"""Checks for the Kubernetes manifests in deploy/kubernetes (issue 20).

Two checks, both run by tests/e2e/test_kubernetes.py:

- schema_errors(doc): a STRICT walk of one manifest against the official
  `kubernetes` Python client's models (`openapi_types` / `attribute_map`): an
  unknown field, a string where an int belongs, a list where a map belongs, a
  missing apiVersion/kind mapping all give an error. (The client's own
  deserializer is lenient: it drops unknown keys.) The client is heavy and
  its python-dateutil pin fights checkov's, so it lives in the lint venv
  (below) and this module runs there as a script:

      .venv-lint/bin/python tests/e2e/k8s_check.py schema FILE...   # JSON list of errors

- checkov, the policy linter, also from the lint venv.

The lint venv (ROOT/.venv-lint, PINS below) is created on first use by
ensure_lint_venv(), cached by a stamp file naming the pins, under a file
lock so that parallel test runs do not install twice. By hand:

    .venv/bin/python tests/e2e/k8s_check.py setup
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = ROOT / "deploy" / "kubernetes"
LINT_VENV = Path(os.environ.get("PC_LINT_VENV") or ROOT / ".venv-lint")
# checkov first, with its own dependencies; the kubernetes client after it
# without its dependencies: kubernetes 37 asks for python-dateutil>=3 while
# checkov's botocore wants <3, and the models used here need neither.
CHECKOV_PIN = "checkov==3.3.30"
KUBERNETES_PINS = ["kubernetes==37.0.2", "durationpy==0.11", "websocket-client==1.9.2",
                   "requests-oauthlib==2.0.0", "oauthlib==4.0.1"]
STAMP = LINT_VENV / (".stamp-" + "-".join([CHECKOV_PIN, *KUBERNETES_PINS]).replace("==", "_"))

# apiVersion/kind -> the client's model class name.
KINDS = {
    ("batch/v1", "CronJob"): "V1CronJob",
    ("batch/v1", "Job"): "V1Job",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ConfigMap"): "V1ConfigMap",
}
# Fields whose API type is a resource.Quantity (int or string), which the
# client spells Dict[str, str].
QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "hard"}


# --------------------------------------------------------------------------
# The lint venv (runs in the project venv)

def ensure_lint_venv() -> float:
    """Creates LINT_VENV with the pins unless its stamp exists. Returns the
    seconds spent installing (0.0 when cached). Raises RuntimeError with the
    pip output if the install fails (e.g. PyPI unreachable)."""
    if STAMP.exists():
        return 0.0
    LINT_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(str(LINT_VENV) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if STAMP.exists():
            return 0.0
        started = time.monotonic()
        python = LINT_VENV / "bin" / "python"
        steps = [
            ["python3", "-m", "venv", "--clear", str(LINT_VENV)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             CHECKOV_PIN],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--no-deps", *KUBERNETES_PINS],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(
                    f"creating the lint venv {LINT_VENV} failed at {' '.join(step)} "
                    f"(exit {done.returncode}); it needs PyPI (pip) and python3-venv "
                    f"(apt-get install python3-venv):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        seconds = time.monotonic() - started
        STAMP.write_text(f"installed in {seconds:.0f} s\n")
        return seconds


def lint_python() -> Path:
    return LINT_VENV / "bin" / "python"


def run_schema_check(paths: list[Path]) -> list[str]:
    """schema_errors() of every document of every file, run in the lint venv."""
    done = subprocess.run([str(lint_python()), __file__, "schema", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"schema check crashed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def run_checkov(paths: list[Path]) -> dict:
    """checkov's results for the files (kubernetes framework, no network):
    {"passed", "failed", "skipped": [check records], "exit": code}."""
    args = [str(LINT_VENV / "bin" / "checkov"), "--skip-download",
            "--framework", "kubernetes", "--output", "json"]
    for p in paths:
        args += ["-f", str(p)]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING="False")
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"checkov printed no JSON (exit {done.returncode}): {e}\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}") from None
    reports = report if isinstance(report, list) else [report]
    out: dict = {"passed": [], "failed": [], "skipped": [], "exit": done.returncode}
    for r in reports:
        results = r.get("results", {})
        for kind in ("passed", "failed", "skipped"):
            out[kind] += results.get(f"{kind}_checks", [])
    return out


# --------------------------------------------------------------------------
# The strict schema walk (runs in the lint venv)

def _type_ok(value, type_name: str) -> bool:
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "datetime":
        return isinstance(value, str)
    if type_name == "object":  # IntOrString, RawExtension
        return True
    raise AssertionError(f"unhandled primitive type {type_name}")


def _walk(value, type_name: str, path: str, errors: list[str], models, field: str = "") -> None:
    if value is None:
        return  # YAML `key:` with no value = unset; the API accepts null
    if type_name.startswith("List[") and type_name.endswith("]"):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list ({type_name}), got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _walk(item, type_name[5:-1], f"{path}[{i}]", errors, models)
        return
    if type_name.startswith("Dict[") and type_name.endswith("]"):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map ({type_name}), got {type(value).__name__}")
            return
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(f"{path}: map key {k!r} is not a string")
            if field in QUANTITY_MAPS and isinstance(v, (int, float)) and not isinstance(v, bool):
                continue
            _walk(v, inner, f"{path}.{k}", errors, models)
        return
    model = getattr(models, type_name, None)
    if model is None:
        if not _type_ok(value, type_name):
            errors.append(f"{path}: expected {type_name}, got {type(value).__name__} {value!r}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name}), got {type(value).__name__} "
                      f"{value!r}")
        return
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        attr = by_json.get(key)
        if attr is None:
            known = ", ".join(sorted(by_json))
            errors.append(f"{path}.{key}: unknown field of {type_name} (known: {known})")
            continue
        _walk(item, model.openapi_types[attr], f"{path}.{key}", errors, models, field=key)


def schema_errors(doc: dict, models) -> list[str]:
    """Every way `doc` (one parsed manifest) differs from the API types."""
    if not isinstance(doc, dict):
        return [f"document is not a mapping: {doc!r}"]
    key = (doc.get("apiVersion"), doc.get("kind"))
    name = (doc.get("metadata") or {}).get("name", "?")
    where = f"{key[1]}/{name}"
    if key not in KINDS:
        return [f"{where}: apiVersion/kind {key} is not one this check knows: {sorted(KINDS)}"]
    errors: list[str] = []
    _walk(doc, KINDS[key], where, errors, models)
    return errors


def _schema_main(paths: list[str]) -> int:
    import yaml
    from kubernetes.client import models

    errors = []
    for p in paths:
        with open(p) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is None:
                    continue
                errors += [f"{p}#{i}: {e}" for e in schema_errors(doc, models)]
    print(json.dumps(errors))
    return 1 if errors else 0


# --------------------------------------------------------------------------
# Sizing (docs/kubernetes.md "Sizing"): run in the project venv

def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def measure(runs: int = 3, limit: int = 3, seconds: float = 8) -> dict:
    """A real cycle of `runs` sleeper flow runs at PREFECT_WORKER_FLOW_LIMIT
    `limit` against a local server; samples /proc/*/status every 50 ms for
    the binary and every process below it. Returns the peaks in KiB."""
    import tempfile

    from harness import Cycle, Prefect, PrefectServer, proc_status_kib

    server = PrefectServer().start()
    try:
        prefect = Prefect(server)
        pool = prefect.create_pool(paused=True)
        deployment_id, _ = prefect.deploy(pool, "flows.py:sleeper")
        prefect.schedule_runs(deployment_id, runs, {"seconds": seconds})
        cycle = Cycle(server, Path(tempfile.mkdtemp(prefix="pc-k8s-measure-")))
        proc = cycle.spawn(pool, {"PREFECT_WORKER_FLOW_LIMIT": str(limit),
                                  "PREFECT_WORKER_CYCLE_LOG_LEVEL": "info"})
        controller_hwm, flow_hwm, tree_rss, flows_seen = 0, 0, 0, set()
        while proc.popen.poll() is None:
            pids = _tree(proc.pid)
            controller_hwm = max(controller_hwm, proc_status_kib(proc.pid, "VmHWM"))
            total = 0
            for p in pids:
                total += proc_status_kib(p, "VmRSS")
                if p != proc.pid:
                    flows_seen.add(p)
                    flow_hwm = max(flow_hwm, proc_status_kib(p, "VmHWM"))
            tree_rss = max(tree_rss, total)
            time.sleep(0.05)
        result = proc.finish(60)
        assert result.returncode == 0, result
        return {"controller_peak_rss_kib": controller_hwm, "flow_run_peak_rss_kib": flow_hwm,
                "tree_peak_rss_kib": tree_rss, "processes_seen": len(flows_seen),
                "runs": runs, "limit": limit, "cycle_seconds": round(result.duration, 1)}
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["schema"]:
        sys.exit(_schema_main(sys.argv[2:]))
    if sys.argv[1:2] == ["measure"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(measure(), indent=1))
        sys.exit(0)
    if sys.argv[1:2] == ["setup"]:
        print(f"lint venv {LINT_VENV}: installed in {ensure_lint_venv():.0f} s (0 = cached)")
        sys.exit(0)
    sys.exit("usage: k8s_check.py schema FILE... | setup | measure")
