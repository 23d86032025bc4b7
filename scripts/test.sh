#!/usr/bin/env bash
# Every test: builds (scripts/build.sh), runs the unit tests (CTest) and the
# end-to-end tests (pytest, tests/e2e/, against a real Prefect server the suite
# starts). Exits non-zero if anything failed; ends with the runners' summaries.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/build.sh || { echo "test.sh: build failed"; exit 1; }

ctest_log=$(mktemp)
ctest --test-dir build --output-on-failure -j2 2>&1 | tee "$ctest_log"
ctest_rc=${PIPESTATUS[0]}

pytest_rc=0
pytest_summary=""
if compgen -G "tests/e2e/test_*.py" >/dev/null; then
  pytest_log=$(mktemp)
  .venv/bin/python -m pytest -p no:cacheprovider -v tests/e2e 2>&1 | tee "$pytest_log"
  pytest_rc=${PIPESTATUS[0]}
  pytest_summary=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$pytest_log" | tail -1)
fi

echo
echo "==== summary"
grep -E 'tests passed|tests failed out of' "$ctest_log" | tail -1
[ -n "$pytest_summary" ] && echo "$pytest_summary"
if [ "$ctest_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ]; then
  echo "test.sh: FAILED (ctest $ctest_rc, pytest $pytest_rc)"
  exit 1
fi
exit 0
