#!/usr/bin/env bash
# The main job, on a fresh machine: installs and builds (scripts/build.sh),
# starts a local Prefect server (throwaway home, SQLite, 127.0.0.1, a free
# port), creates a paused process pool "demo-pool" with a deployment of
# examples/demo_flow.py and 3 flow runs due now, drains them with
# `build/prefect-cycle run`, prints the JSON summary, checks that every run
# COMPLETED and the pool is paused again, and stops the server (on every exit).
# Exits with prefect-cycle's exit code (1 if the check fails).
# PREFECT_CYCLE_BIN=/path/to/prefect-cycle uses that binary instead of building.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null
if [ -n "${PREFECT_CYCLE_BIN:-}" ]; then
  bash scripts/setup.sh
  bin=$PREFECT_CYCLE_BIN
else
  bash scripts/build.sh prefect-cycle
  bin="$root/build/prefect-cycle"
fi

py="$root/.venv/bin/python"
tmp=$(mktemp -d /tmp/prefect-cycle-demo.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: stopping the Prefect server"
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No proxy for loopback (a developer's http_proxy must not see these requests).
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PREFECT_API_URL="http://127.0.0.1:$port/api"
echo "demo: starting a Prefect server at $PREFECT_API_URL"
# setsid: the server gets its own process group, stopped as a whole by cleanup.
PREFECT_HOME="$tmp/home" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false \
  setsid .venv/bin/prefect server start --host 127.0.0.1 --port "$port" >"$tmp/server.log" 2>&1 &
server_pid=$!
if ! "$py" - "$PREFECT_API_URL/health" <<'PY'
import sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        with opener.open(sys.argv[1], timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit(1)
PY
then
  echo "demo: the Prefect server did not become healthy within 90 s; its log:"
  tail -40 "$tmp/server.log"
  exit 1
fi
echo "demo: server healthy"

mkdir -p "$tmp/flows"
cp examples/demo_flow.py "$tmp/flows/"
export PREFECT_HOME="$tmp/client-home" PREFECT_SERVER_ANALYTICS_ENABLED=false
run_ids=$("$py" scripts/demo_setup.py --pool demo-pool --flows-dir "$tmp/flows" --runs 3 | tail -1)
echo "demo: pool demo-pool (paused) with 3 due flow runs: $run_ids"

echo "demo: running: $bin run"
set +e
PATH="$root/.venv/bin:$PATH" \
PREFECT_WORK_POOL=demo-pool \
PREFECT_WORKER_PYTHON="$py" \
PREFECT_WAIT_POLL_SECONDS=1 \
PREFECT_CYCLE_SUMMARY_FILE="$tmp/summary.json" \
  "$bin" run
code=$?
set -e
echo "demo: prefect-cycle exited with $code; summary ($tmp/summary.json):"
if [ -f "$tmp/summary.json" ]; then
  "$py" -m json.tool "$tmp/summary.json"
else
  echo "demo: (no summary file was written)"
fi
# shellcheck disable=SC2086
"$py" scripts/demo_setup.py --pool demo-pool --check $run_ids || exit 1
exit "$code"
