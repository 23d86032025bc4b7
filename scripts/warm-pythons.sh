#!/usr/bin/env bash
# The warm launcher's unit tests (tests/unit/worker/warm_launcher_test.cpp,
# a stand-in engine, no Prefect needed) with each Python named, default the
# pyenv 3.11, 3.12 and 3.13 of this machine image. 3.12+ warn on fork() in a
# multi-threaded process; the tests check that a forked run's stderr holds
# nothing but its own output and that a preload starting a thread is refused.
# Not in the test command (a matrix); run after scripts/build.sh:
#   bash scripts/warm-pythons.sh [PYTHON ...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x build/tests/unit/unit_tests ] || { echo "warm-pythons: run scripts/build.sh first"; exit 1; }
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
done
exit $rc
