#!/usr/bin/env bash
# The warm launcher's unit tests (tests/unit/worker/launch/zygote_test.cpp,
# a stand-in engine, no Prefect needed) with each Python named, default the
# pyenv 3.11, 3.12 and 3.13 of this machine image. 3.12+ warn on fork() in a
# multi-threaded process; the tests check that a forked run's stderr holds
# nothing but its own output and that a preload starting a thread is refused.
# With --e2e, for each Python also a venv with the pinned Prefect
# (.work/venv-warm-<version>) runs the e2e warm tests' flow runs
# (PC_E2E_WORKER_PYTHON): test_warm_start.py and test_worker.py's warm cases.
# Not in the test command (a matrix); run after scripts/build.sh:
#   bash scripts/warm-pythons.sh [--e2e] [PYTHON ...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x build/tests/unit/unit_tests ] || { echo "warm-pythons: run scripts/build.sh first"; exit 1; }
e2e=false
if [ "${1:-}" = "--e2e" ]; then
  e2e=true
  shift
fi
pythons=("$@")
if [ ${#pythons[@]} -eq 0 ]; then
  for v in 3.11 3.12 3.13; do
    found=$(ls -d "$HOME"/.pyenv/versions/"$v".*/bin/python3 2>/dev/null | tail -1)
    [ -n "$found" ] || { echo "warm-pythons: no Python $v (pyenv install $v, or name one)"; exit 1; }
    pythons+=("$found")
  done
fi
rc=0
for py in "${pythons[@]}"; do
  version=$("$py" -c 'import sys; print(sys.version.split()[0])') || { rc=1; continue; }
  if PC_WARM_TEST_PYTHON="$py" build/tests/unit/unit_tests "[warm]" >/tmp/warm-pythons.log 2>&1; then
    echo "warm-pythons: Python $version: $(tail -2 /tmp/warm-pythons.log | head -1)"
  else
    cat /tmp/warm-pythons.log
    echo "warm-pythons: Python $version: FAILED"
    rc=1
  fi
  if $e2e; then
    venv=.work/venv-warm-$version
    if [ ! -x "$venv/bin/prefect" ]; then
      "$py" -m venv "$venv" && "$venv/bin/pip" install -q "prefect==${PREFECT_VERSION:-3.8.8}" \
        "fastapi==${FASTAPI_VERSION:-0.150.0}" || { echo "warm-pythons: pip failed for $version"; rc=1; continue; }
    fi
    if PC_E2E_WORKER_PYTHON="$root/$venv/bin/python" .venv/bin/python -m pytest -p no:cacheprovider \
        -q tests/e2e/test_warm_start.py tests/e2e/test_worker.py -k "warm or cycle or launcher_killed \
        or preload or logging" >/tmp/warm-pythons-e2e.log 2>&1; then
      echo "warm-pythons: Python $version e2e: $(tail -1 /tmp/warm-pythons-e2e.log)"
    else
      tail -60 /tmp/warm-pythons-e2e.log
      echo "warm-pythons: Python $version e2e: FAILED"
      rc=1
    fi
  fi
done
exit $rc
