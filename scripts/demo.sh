#!/usr/bin/env bash
# The main job, on a fresh machine: installs and builds (scripts/build.sh),
# starts a local Prefect server (throwaway home, SQLite, 127.0.0.1), creates a
# paused process pool "demo-pool" with a deployment and 3 due flow runs, drains
# them with prefect-cycle, prints the summary, checks the result, and stops the
# server. Exits with prefect-cycle's exit code (1 if the check fails).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh

tmp=$(mktemp -d /tmp/prefect-cycle-demo.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PREFECT_API_URL="http://127.0.0.1:$port/api"
echo "demo: starting a Prefect server at $PREFECT_API_URL"
PREFECT_HOME="$tmp/home" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false \
  .venv/bin/prefect server start --host 127.0.0.1 --port "$port" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "$PREFECT_API_URL/health" >/dev/null || { tail -30 "$tmp/server.log"; exit 1; }

mkdir -p "$tmp/flows"
cp examples/demo_flow.py "$tmp/flows/"
export PREFECT_HOME="$tmp/client-home"
run_ids=$(.venv/bin/python scripts/demo_setup.py --pool demo-pool --flows-dir "$tmp/flows" --runs 3 | tail -1)
echo "demo: pool demo-pool (paused) with 3 due flow runs: $run_ids"

set +e
PATH="$root/.venv/bin:$PATH" \
PREFECT_WORK_POOL=demo-pool \
PREFECT_WORKER_PYTHON="$root/.venv/bin/python" \
PREFECT_WAIT_POLL_SECONDS=1 \
PREFECT_CYCLE_SUMMARY_FILE="$tmp/summary.json" \
  build/prefect-cycle run
code=$?
set -e
echo "demo: prefect-cycle exited with $code; summary:"
cat "$tmp/summary.json"
# shellcheck disable=SC2086
.venv/bin/python scripts/demo_setup.py --pool demo-pool --check $run_ids || exit 1
exit "$code"
