#!/usr/bin/env bash
# Compatibility matrix: runs prefect-cycle against real Prefect servers of
# several versions and prints a markdown table (version x feature).
#
#   scripts/compat.sh                 # default versions below
#   scripts/compat.sh 2.20.27 3.9.1   # only these
#
# COMPAT_SKIP_DONE=1 keeps a version's results from an earlier run (resume).
# Needs build/prefect-cycle (scripts/build.sh) or PREFECT_CYCLE_BIN, python3
# (3.9-3.12) with venv, and PyPI. For each version it creates or reuses a venv
# ${COMPAT_DIR:-.cache/compat}/venv-VERSION with the pins below (3.9.1 reuses
# .venv when that has Prefect 3.9.1), starts that version's server on SQLite on
# a free 127.0.0.1 port, and runs, with that version's own Python client for
# pools, deployments and runs: route probes, an empty-pool cycle, a cycle of 2
# runs, a --trigger cycle, stale recovery (a cycle SIGKILLed with its flow as
# if on another host; a second cycle of another worker name 4 s later must
# mark the run CRASHED) and `doctor`. Results: $COMPAT_DIR/results/VERSION.json
# (+ one .log per scenario with the cycle's debug output); the table goes to
# stdout and $COMPAT_DIR/results/table.md.
#
# A cycle scenario fails when the binary exits non-zero, a run does not end as
# expected, or any request is answered 404/422 (a route or field the server
# does not have). Exit code: 0 if every version passed, 1 otherwise, 2 on a
# usage/setup error. Bounded: venv install 900 s, server start 180 s, probes
# ${COMPAT_VERSION_TIMEOUT:-900} s per version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DEFAULT_VERSIONS="2.20.27 3.0.11 3.4.25 3.8.8 3.9.1"
# Pins found by trying (2026-12-01), next to each version:
pins_for() {
  case "$1" in
    2.20.*) echo "" ;;  # installs and serves without pins (no `python -m prefect`: use the prefect script)
    3.0.*) echo "pydantic==2.9.2 fastapi==0.115.4" ;;  # newer pydantic/fastapi break its server start
    # 3.4.25 unpinned resolves fastapi 0.165.0, on which its server dies at import
    # ("Body() got an unexpected keyword argument 'min_items'"), and its
    # prefect.workers.base imports importlib_metadata without requiring it.
    3.4.*) echo "fastapi==0.115.14 importlib_metadata" ;;
    # 3.8.8 does not cap FastAPI: 0.151+ answers 422 to its client's null
    # fields and 0.155+ stops its server (scripts/setup.sh).
    3.8.*) echo "fastapi==0.150.0" ;;
    *) echo "" ;;       # 3.9.1: as pinned by scripts/setup.sh's .venv (it caps fastapi<0.151 itself)
  esac
}

COMPAT_DIR=${COMPAT_DIR:-$root/.cache/compat}
mkdir -p "$COMPAT_DIR/results"
COMPAT_DIR=$(cd "$COMPAT_DIR" && pwd)
BIN=${PREFECT_CYCLE_BIN:-$root/build/prefect-cycle}
PY=${COMPAT_PYTHON:-python3}
VERSION_TIMEOUT=${COMPAT_VERSION_TIMEOUT:-900}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<<"$DEFAULT_VERSIONS"
[ -x "$BIN" ] || { echo "compat: $BIN not found: run scripts/build.sh (or set PREFECT_CYCLE_BIN)" >&2; exit 2; }
# A private copy: a rebuild while the matrix runs must not mix two binaries.
work=$(mktemp -d /tmp/pc-compat-XXXXXX)
cp "$BIN" "$work/prefect-cycle"
BIN="$work/prefect-cycle"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM -- "-$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/flows"
cat >"$work/flows/flows.py" <<'PY'
import time

from prefect import flow


@flow(log_prints=True)
def hello(name: str = "world"):
    print(f"hello {name}")
    return 42


@flow
def sleeper(seconds: float = 120):
    time.sleep(seconds)
PY

cat >"$work/compat_probe.py" <<'PY'
"""prefect-cycle compatibility probe for one Prefect server (scripts/compat.sh).

Run with the Python of the venv whose Prefect version the server runs, so that
pools, deployments and runs are made with that version's own client:

    <venv>/bin/python compat_probe.py API_URL BINARY FLOWS_DIR OUT_JSON

Writes a JSON object: server versions, route probes, field presence, and one
entry per cycle scenario (exit code, 404/422 requests, run states, reason).
Only the standard library and Prefect's client are used.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

API, BINARY, FLOWS_DIR, OUT = sys.argv[1:5]
PYTHON = sys.executable
os.environ["PREFECT_API_URL"] = API
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
REQ_LINE = re.compile(r"\b(GET|POST|PATCH|PUT|DELETE) (\S+) -> (\d{3})")


def http(method, path, body=None):
    """(status, parsed JSON or text) of one raw API request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "X-PREFECT-API-VERSION": "0.8.4"})
    for attempt in range(6):
        try:
            with OPENER.open(req, timeout=30) as r:
                raw = r.read().decode(errors="replace")
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read().decode(errors="replace")
            status = e.code
        if status == 503 and attempt < 5:
            time.sleep(0.5 * (attempt + 1))
            continue
        break
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def retry(fn, attempts=8):
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            text = str(e)
            if i == attempts - 1 or not ("503" in text or "locked" in text or "Connect" in text):
                raise
            time.sleep(0.5 * (i + 1))


def client_call(method, *args, **kwargs):
    from prefect.client.orchestration import get_client

    async def go():
        async with get_client() as c:
            return await getattr(c, method)(*args, **kwargs)

    return retry(lambda: asyncio.run(go()))


def create_pool(name):
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    client_call("create_work_pool", WorkPoolCreate(
        name=name, type="process", is_paused=True,
        base_job_template=ProcessWorker.get_default_base_job_template()))
    return name


def deploy(pool, func, name="dep"):
    from prefect.flows import load_flow_from_entrypoint

    entry = f"flows.py:{func}"
    flow = load_flow_from_entrypoint(os.path.join(FLOWS_DIR, entry))
    flow_id = client_call("create_flow_from_name", flow.name)
    dep_id = client_call("create_deployment", flow_id=flow_id, name=name, work_pool_name=pool,
                         entrypoint=entry, path=FLOWS_DIR,
                         pull_steps=[{"prefect.deployments.steps.set_working_directory":
                                      {"directory": FLOWS_DIR}}],
                         job_variables={})
    return str(dep_id), f"{flow.name}/{name}"


def schedule(dep_id, n, parameters=None):
    return [str(client_call("create_flow_run_from_deployment", uuid.UUID(dep_id),
                            parameters=parameters or {}).id) for _ in range(n)]


def read_run(run_id):
    return client_call("read_flow_run", uuid.UUID(run_id))


def state_type(run_id):
    r = read_run(run_id)
    return r.state.type.value if r.state else "NONE"


def cycle_env(pool, extra=None):
    home = tempfile.mkdtemp(prefix="pc-compat-cycle-")
    env = {"PATH": f"{os.path.dirname(PYTHON)}:/usr/local/bin:/usr/bin:/bin",
           "HOME": home, "LANG": "C.UTF-8", "PREFECT_HOME": os.path.join(home, "ph"),
           "PREFECT_API_URL": API, "PREFECT_WORK_POOL": pool,
           "PREFECT_WORKER_PYTHON": PYTHON, "PREFECT_WAIT_POLL_SECONDS": "1",
           "PREFECT_WORKER_CYCLE_LOG_LEVEL": "debug",
           "PREFECT_WORKER_CYCLE_LOG_FORMAT": "text"}
    env.update(extra or {})
    return env


def bad_requests(output):
    """Every "METHOD path -> 404/422" debug line, ids replaced by {id}."""
    seen = []
    for m in REQ_LINE.finditer(output):
        if m.group(3) in ("404", "422"):
            path = re.sub(r"^https?://[^/]+", "", m.group(2))
            path = re.sub(r"^/api(?=/)", "", path)
            path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", path)
            path = re.sub(r"/work_pools/[^/ ]+", "/work_pools/{pool}", path)
            item = f"{m.group(1)} {path} -> {m.group(3)}"
            if item not in seen:
                seen.append(item)
    return seen


def count_503(output):
    return sum(1 for m in REQ_LINE.finditer(output) if m.group(3) == "503")


def run_binary(pool, args=("run",), extra=None, timeout=240):
    started = time.monotonic()
    p = subprocess.run([BINARY, *args], env=cycle_env(pool, extra), capture_output=True,
                       text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    with open(f"{OUT}.{CURRENT[0]}.log", "a") as f:
        f.write(f"$ {' '.join(args)}\n{out}\n")
    return {"exit": p.returncode, "seconds": round(time.monotonic() - started, 1),
            "bad_requests": bad_requests(out), "n503": count_503(out)}, out


results = {"api": API}


CURRENT = ["?"]


def record(name, fn):
    CURRENT[0] = name
    t0 = time.monotonic()
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001 - recorded as a failure
        results[name] = {"ok": False, "reason": f"{type(e).__name__}: {str(e)[:300]}"}
    results[name].setdefault("seconds", round(time.monotonic() - t0, 1))
    json.dump(results, open(OUT, "w"), indent=1)
    print(f"[compat] {name}: {json.dumps(results[name])[:400]}", flush=True)


# --- 1. versions and routes --------------------------------------------------
def versions():
    return {"ok": True, "admin_version": http("GET", "/admin/version"),
            "version": http("GET", "/version")}


def routes():
    pool = create_pool(f"probe-{uuid.uuid4().hex[:6]}")
    dep_id, full = deploy(pool, "hello", "probe")
    [run] = schedule(dep_id, 1)
    flow, dep = full.split("/")
    probes = {
        "PATCH /flow_runs/{id}/labels": http("PATCH", f"/flow_runs/{run}/labels", {"x": "y"}),
        "GET /flow_run_states/?flow_run_id=": http("GET", f"/flow_run_states/?flow_run_id={run}"),
        "POST /work_pools/{p}/workers/heartbeat": http(
            "POST", f"/work_pools/{pool}/workers/heartbeat",
            {"name": "probe-worker", "heartbeat_interval_seconds": 30}),
        "POST /work_pools/{p}/workers/filter": http("POST", f"/work_pools/{pool}/workers/filter", {}),
        "DELETE /work_pools/{p}/workers/{w}": http("DELETE", f"/work_pools/{pool}/workers/probe-worker"),
        "POST /work_pools/{p}/get_scheduled_flow_runs": http(
            "POST", f"/work_pools/{pool}/get_scheduled_flow_runs", {}),
        "POST /flow_runs/count": http("POST", "/flow_runs/count", {}),
        "PATCH /work_pools/{p} is_paused": http("PATCH", f"/work_pools/{pool}", {"is_paused": False}),
        "POST /deployments/{id}/create_flow_run idempotency_key": http(
            "POST", f"/deployments/{dep_id}/create_flow_run", {"idempotency_key": "k1"}),
        "GET /deployments/name/{flow}/{dep}": http("GET", f"/deployments/name/{flow}/{dep}"),
    }
    # a second heartbeat so that the worker exists for the field check
    http("POST", f"/work_pools/{pool}/workers/heartbeat",
         {"name": "probe-worker2", "heartbeat_interval_seconds": 30})
    out = {}
    for k, (status, body) in probes.items():
        detail = body.get("detail") if isinstance(body, dict) else None
        out[k] = {"status": status, "detail": str(detail)[:120] if detail else None}
    idem = [http("POST", f"/deployments/{dep_id}/create_flow_run", {"idempotency_key": "k1"})[1]
            for _ in range(2)]
    out["idempotency_same_run"] = (isinstance(idem[0], dict) and isinstance(idem[1], dict)
                                  and idem[0].get("id") == idem[1].get("id"))
    run_json = http("GET", f"/flow_runs/{run}")[1]
    pool_json = http("GET", f"/work_pools/{pool}")[1]
    workers = http("POST", f"/work_pools/{pool}/workers/filter", {})[1]
    worker_json = workers[0] if isinstance(workers, list) and workers else {}
    fields = {"flow_run": sorted(run_json) if isinstance(run_json, dict) else run_json,
              "work_pool": sorted(pool_json) if isinstance(pool_json, dict) else pool_json,
              "worker": sorted(worker_json) if isinstance(worker_json, dict) else worker_json}
    http("PATCH", f"/work_pools/{pool}", {"is_paused": True})
    return {"ok": True, "routes": out, "fields": fields,
            "pool_status": pool_json.get("status") if isinstance(pool_json, dict) else None,
            "worker_status": worker_json.get("status") if isinstance(worker_json, dict) else None}


# --- 3. cycle scenarios ------------------------------------------------------
def empty_pool():
    pool = create_pool(f"empty-{uuid.uuid4().hex[:6]}")
    res, out = run_binary(pool)
    paused = client_call("read_work_pool", pool).is_paused
    res["pool_paused_after"] = paused
    res["ok"] = res["exit"] == 0 and paused and not res["bad_requests"]
    return res


def two_runs():
    pool = create_pool(f"two-{uuid.uuid4().hex[:6]}")
    dep_id, _ = deploy(pool, "hello")
    runs = schedule(dep_id, 2)
    res, out = run_binary(pool, extra={"PREFECT_WORKER_FLOW_LIMIT": "2"})
    res["states"] = [state_type(r) for r in runs]
    res["pool_paused_after"] = client_call("read_work_pool", pool).is_paused
    res["ok"] = (res["exit"] == 0 and res["states"] == ["COMPLETED"] * 2
                 and res["pool_paused_after"] and not res["bad_requests"])
    return res


def trigger():
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    pool = create_pool(f"trig-{uuid.uuid4().hex[:6]}")
    dep_id, full = deploy(pool, "hello", "trig")
    res, out = run_binary(pool, args=("run", "--trigger", full))
    runs = client_call("read_flow_runs", deployment_filter=DeploymentFilter(
        id=DeploymentFilterId(any_=[uuid.UUID(dep_id)])))
    res["states"] = [r.state.type.value for r in runs]
    res["ok"] = res["exit"] == 0 and res["states"] == ["COMPLETED"] and not res["bad_requests"]
    return res


def stale():
    """A cycle SIGKILLed (with its flow) on "another host"; a second cycle of
    another worker name 4 s later must mark the run CRASHED."""
    pool = create_pool(f"stale-{uuid.uuid4().hex[:6]}")
    dep_id, _ = deploy(pool, "sleeper")
    [run] = schedule(dep_id, 1, {"seconds": 120})
    env = cycle_env(pool, {"PREFECT_WORKER_HEARTBEAT_SECONDS": "1",
                           "PREFECT_WORKER_NAME": "compat-killed"})
    logf = tempfile.TemporaryFile()
    proc = subprocess.Popen([BINARY, "run"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    fr = None
    while time.monotonic() < deadline:
        fr = read_run(run)
        if fr.state and fr.state.type.value == "RUNNING" and fr.infrastructure_pid:
            break
        time.sleep(0.5)
    else:
        proc.kill()
        proc.wait()
        return {"ok": False, "reason": f"run never RUNNING (state {fr.state.type.value if fr and fr.state else None})"}
    proc.send_signal(signal.SIGSTOP)  # keep pipes open while the flow dies
    try:
        os.killpg(int(str(fr.infrastructure_pid).split(":")[-1]), signal.SIGKILL)
    except (ProcessLookupError, ValueError, PermissionError):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logf.seek(0)
    first_out = logf.read().decode(errors="replace")
    with open(f"{OUT}.stale-killed.log", "w") as f:
        f.write(first_out)
    claim_msg = None
    st, hist = http("GET", f"/flow_run_states/?flow_run_id={run}")
    if isinstance(hist, list):
        claim_msg = [s.get("message") for s in hist if s.get("type") == "PENDING"]
    labels = getattr(fr, "labels", None)
    client_call("update_flow_run", uuid.UUID(run), infrastructure_pid="other-host:4242")
    time.sleep(4)
    res, out = run_binary(pool, extra={"PREFECT_WORKER_HEARTBEAT_SECONDS": "1",
                                       "PREFECT_WORKER_NAME": "compat-next",
                                       "PREFECT_WAIT_TIMEOUT_SECONDS": "40"}, timeout=120)
    final = read_run(run).state
    res["state_after"] = final.type.value if final else None
    res["message"] = (final.message or "")[:200] if final else None
    res["pending_messages"] = claim_msg
    res["labels_on_run"] = {k: v for k, v in (labels or {}).items() if "cycle" in k} if isinstance(labels, dict) else labels
    res["first_cycle_bad_requests"] = bad_requests(first_out)
    if res["state_after"] != "CRASHED":
        # do not leave a RUNNING orphan behind for the next scenario
        from prefect.states import Crashed
        client_call("set_flow_run_state", uuid.UUID(run), Crashed(message="compat cleanup"), force=True)
    res["ok"] = res["state_after"] == "CRASHED" and res["exit"] == 0
    return res


def doctor():
    pool = create_pool(f"doc-{uuid.uuid4().hex[:6]}")
    res, out = run_binary(pool, args=("doctor",))
    res["failing_lines"] = [l.strip()[:200] for l in out.splitlines()
                            if l.lstrip().startswith("✗")][:8]
    res["ok"] = res["exit"] == 0
    return res


def client_ops():
    """This venv's client: pause/resume a pool, read runs and states."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    pool = create_pool(f"cli-{uuid.uuid4().hex[:6]}")
    dep_id, _ = deploy(pool, "hello", "cli")
    [run] = schedule(dep_id, 1)
    client_call("update_work_pool", pool, WorkPoolUpdate(is_paused=False))
    resumed = not client_call("read_work_pool", pool).is_paused
    client_call("update_work_pool", pool, WorkPoolUpdate(is_paused=True))
    paused = client_call("read_work_pool", pool).is_paused
    states = client_call("read_flow_run_states", uuid.UUID(run))
    return {"ok": resumed and paused and len(states) >= 1, "resumed": resumed, "paused": paused,
            "states": [s.type.value for s in states]}


scenarios = sys.argv[5].split(",") if len(sys.argv) > 5 else [
    "versions", "routes", "client_ops", "empty_pool", "two_runs", "trigger", "stale", "doctor"]
for name in scenarios:
    record(name, globals()[name])
PY

cat >"$work/render.py" <<'PY'
"""Markdown table version x feature from results/VERSION.json files."""
import json
import sys

out_dir, versions = sys.argv[1], sys.argv[2:]
COLS = [("server", "`/admin/version`"), ("labels", "labels route"),
        ("states", "`/flow_run_states/?flow_run_id=`"), ("client", "own client: pool pause/resume"),
        ("empty_pool", "empty pool"), ("two_runs", "2 runs"), ("trigger", "`--trigger`"),
        ("stale", "stale run of a killed cycle (other host)"), ("doctor", "`doctor`")]
FAILING = {"empty_pool", "two_runs", "trigger", "stale", "doctor", "client", "server"}


def cell(d, key):
    if d is None:
        return False, "no result"
    if key == "server":
        v = d.get("versions", {})
        ok = v.get("ok") and v.get("admin_version", [0])[0] == 200
        return ok, f"{v.get('admin_version', ['?', '?'])[1]} (API {v.get('version', ['?', '?'])[1]})" if ok else v.get("reason", "no answer")
    if key in ("labels", "states"):
        r = d.get("routes", {})
        if not r.get("ok"):
            return None, r.get("reason", "not probed")
        name = "PATCH /flow_runs/{id}/labels" if key == "labels" else "GET /flow_run_states/?flow_run_id="
        status = r["routes"][name]["status"]
        if status < 400:
            return True, f"{status}"
        if key == "labels":  # expected before 3.1.6: informational, not a failure
            return None, f"absent ({status}; added in 3.1.6)"
        return False, f"{status}: route missing"
    name = "client_ops" if key == "client" else key
    r = d.get(name)
    if r is None:
        return False, "not run"
    if r.get("ok"):
        extra = ""
        if "seconds" in r:
            extra = f"{r['seconds']} s"
        return True, extra
    why = []
    if "reason" in r:
        why.append(r["reason"])
    if r.get("exit") not in (None, 0):
        why.append(f"exit {r['exit']}")
    if "states" in r and set(r["states"]) != {"COMPLETED"}:
        why.append(f"states {r['states']}")
    if "state_after" in r and r["state_after"] != "CRASHED":
        why.append(f"run left {r['state_after']}")
    if r.get("bad_requests"):
        why.append("; ".join(r["bad_requests"]))
    if r.get("failing_lines"):
        why.append(" / ".join(r["failing_lines"][:2]))
    return False, ", ".join(why) or "failed"


rows = ["| Prefect | " + " | ".join(c[1] for c in COLS) + " |",
        "|---" * (len(COLS) + 1) + "|"]
failed = []
for v in versions:
    try:
        d = json.load(open(f"{out_dir}/{v}.json"))
    except (OSError, ValueError):
        d = None
    cells = []
    for key, _ in COLS:
        ok, why = cell(d, key)
        mark = "✓" if ok else ("–" if ok is None else "✗")
        why = str(why).replace("|", "\\|").replace("\n", " ")
        cells.append(f"{mark} {why}".strip())
        if ok is False and key in FAILING:
            failed.append(f"{v}: {key}")
    rows.append(f"| {v} | " + " | ".join(cells) + " |")
print("\n".join(rows))
print()
print("failed: " + (", ".join(failed) if failed else "none"))
sys.exit(1 if failed else 0)
PY

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

venv_for() {  # prints the venv dir with Prefect $1 installed (creates it)
  local v=$1 dir
  if [ -x "$root/.venv/bin/python" ] &&
     [ "$("$root/.venv/bin/python" -c 'import prefect; print(prefect.__version__)' 2>/dev/null)" = "$v" ]; then
    echo "$root/.venv"; return
  fi
  dir="$COMPAT_DIR/venv-$v"
  # .installed holds the pins it was made with: a change of pins reinstalls
  if [ "$(cat "$dir/.installed" 2>/dev/null || echo none)" != "prefect==$v $(pins_for "$v")" ]; then
    rm -rf "$dir"
    "$PY" -m venv "$dir" >&2
    # shellcheck disable=SC2046
    timeout 900 "$dir/bin/pip" install -q --disable-pip-version-check "prefect==$v" $(pins_for "$v") >&2 \
      || { echo "compat: pip install prefect==$v failed" >&2; return 1; }
    echo "prefect==$v $(pins_for "$v")" >"$dir/.installed"
  fi
  echo "$dir"
}

start_server() {  # $1 venv, $2 port, $3 home; sets server_pid
  local venv=$1 port=$2 home=$3 i
  env -i PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" HOME="$home" LANG=C.UTF-8 \
    PREFECT_HOME="$home" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false \
    PREFECT_SERVER_UI_ENABLED=false \
    setsid "$venv/bin/prefect" server start --host 127.0.0.1 --port "$port" \
    >"$home/server.log" 2>&1 </dev/null &
  server_pid=$!
  for i in $(seq 1 180); do
    if "$PY" -c "import urllib.request,sys; o=urllib.request.build_opener(urllib.request.ProxyHandler({})); sys.exit(0 if o.open('http://127.0.0.1:$port/api/health', timeout=2).status == 200 else 1)" 2>/dev/null; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 1
  done
  echo "compat: Prefect server on port $port did not start; log tail:" >&2
  tail -c 2000 "$home/server.log" >&2 || true
  return 1
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM -- "-$server_pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$server_pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

for v in "${versions[@]}"; do
  out="$COMPAT_DIR/results/$v.json"
  if [ "${COMPAT_SKIP_DONE:-0}" = 1 ] && grep -q '"doctor"' "$out" 2>/dev/null; then
    echo "== Prefect $v: kept the results of an earlier run (COMPAT_SKIP_DONE=1)" >&2; continue
  fi
  rm -f "$out" "$out".*.log
  echo "== Prefect $v" >&2
  if ! venv=$(venv_for "$v"); then
    echo "{\"versions\": {\"ok\": false, \"reason\": \"pip install failed\"}}" >"$out"; continue
  fi
  home="$work/home-$v"; mkdir -p "$home"
  port=$(free_port)
  started=$(date +%s)
  if ! start_server "$venv" "$port" "$home"; then
    echo "{\"versions\": {\"ok\": false, \"reason\": \"server did not start\"}}" >"$out"
    stop_server; continue
  fi
  echo "   server up on port $port after $(( $(date +%s) - started )) s" >&2
  (cd "$work" && env PREFECT_HOME="$home/client" PREFECT_SERVER_ANALYTICS_ENABLED=false TMPDIR="$work" \
     timeout -k 10 "$VERSION_TIMEOUT" "$venv/bin/python" "$work/compat_probe.py" \
     "http://127.0.0.1:$port/api" "$BIN" "$work/flows" "$out") 2>"$out.probe-stderr.log" | sed -u 's/^/   /' >&2 \
     || echo "   probe exited non-zero (see $out.probe-stderr.log)" >&2
  cp "$home/server.log" "$out.server.log" 2>/dev/null || true
  stop_server
done

set +e
"$PY" "$work/render.py" "$COMPAT_DIR/results" "${versions[@]}" | tee "$COMPAT_DIR/results/table.md"
rc=${PIPESTATUS[0]}
exit "$rc"
