#!/usr/bin/env bash
# Every test: builds (scripts/build.sh, which runs scripts/setup.sh), checks
# the C++ formatting (clang-format --dry-run --Werror) and lints src/
# (scripts/tidy.sh, clang-tidy with .clang-tidy), runs the
# unit tests (CTest) and the end-to-end tests (pytest, tests/e2e/, against a
# real Prefect server the suite starts), then the unit tests again under
# ASan+UBSan (scripts/sanitize.sh), each fuzzer for FUZZ_SECONDS (15), and the
# container image test (scripts/container-test.sh, buildah; needs root).
# Exits non-zero if anything failed. The output ends with the runners' summary
# lines. Non-interactive (CI=true, no stdin). Extra arguments go to pytest.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null

if ! bash scripts/build.sh; then
  echo "test.sh: setup or build failed"
  exit 1
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "==== format (clang-format --dry-run --Werror on every C++ file)"
git ls-files -- 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' \
  | xargs clang-format --dry-run --Werror 2>&1 | tee "$logs/format.log"
format_rc=${PIPESTATUS[1]}
[ "$format_rc" -eq 0 ] && echo "format: clean"

echo "==== lint (scripts/tidy.sh: clang-tidy, the curated .clang-tidy, every file in src/)"
bash scripts/tidy.sh 2>&1 | tee "$logs/tidy.log"
tidy_rc=${PIPESTATUS[0]}

echo "==== unit tests (ctest)"
ctest --test-dir build --output-on-failure -j2 2>&1 | tee "$logs/ctest.log"
ctest_rc=${PIPESTATUS[0]}

echo "==== end-to-end tests (pytest tests/e2e)"
.venv/bin/python -m pytest -p no:cacheprovider -v -rfE --durations=10 tests/e2e "$@" 2>&1 \
  | tee "$logs/pytest.log"
pytest_rc=${PIPESTATUS[0]}

echo "==== unit tests under AddressSanitizer + UBSan (scripts/sanitize.sh, build-asan)"
bash scripts/sanitize.sh 2>&1 | tee "$logs/asan.log"
asan_rc=${PIPESTATUS[0]}

echo "==== fuzzers, ${FUZZ_SECONDS:-15} s each (scripts/fuzz.sh, build-fuzz)"
bash scripts/fuzz.sh 2>&1 | tee "$logs/fuzz.log"
fuzz_rc=${PIPESTATUS[0]}

echo "==== container image (scripts/container-test.sh: buildah build of the Dockerfile, doctor and a cycle inside it)"
bash scripts/container-test.sh 2>&1 | tee "$logs/container.log"
container_rc=${PIPESTATUS[0]}

ctest_summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$logs/ctest.log" | tail -1)
pytest_summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s' "$logs/pytest.log" | tail -1)

asan_summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$logs/asan.log" | tail -1)

echo
echo "==== summary (test.sh: format exit $format_rc, tidy exit $tidy_rc, ctest exit $ctest_rc, asan ctest exit $asan_rc, fuzz exit $fuzz_rc, container exit $container_rc, pytest exit $pytest_rc)"
[ "$format_rc" -eq 0 ] && echo "format: clean" || echo "format: NOT clean (clang-format --dry-run --Werror, see above)"
grep -E '^tidy: ' "$logs/tidy.log" || echo "tidy: no result line (exit $tidy_rc)"
grep -E '^fuzz: ' "$logs/fuzz.log" || echo "fuzz: no result lines (exit $fuzz_rc)"
grep -E '^container-test: (image|1 passed)' "$logs/container.log" || echo "container-test: FAILED (exit $container_rc)"
echo "asan+ubsan: ${asan_summary:-no summary line (exit $asan_rc)}"
echo "${ctest_summary:-ctest: no summary line (exit $ctest_rc)}"
echo "${pytest_summary:-pytest: no summary line (exit $pytest_rc)}"
if [ "$format_rc" -ne 0 ] || [ "$tidy_rc" -ne 0 ] || [ "$ctest_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ] || [ "$asan_rc" -ne 0 ] || [ "$fuzz_rc" -ne 0 ] || [ "$container_rc" -ne 0 ]; then
  exit 1
fi
exit 0
