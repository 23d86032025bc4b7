#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) in build-fuzz
# and runs each for FUZZ_SECONDS (default 15: the test command's budget; e.g.
# FUZZ_SECONDS=600 for a long run). Each starts from its seed corpus
# (tests/fuzz/corpus/<target>, real server responses) copied to a temp dir, so
# the committed corpus does not grow. Prints one line per target with the
# executions; exits non-zero on any crash, leak or timeout (the reproducer is
# kept in build-fuzz/crashes/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null
seconds=${FUZZ_SECONDS:-15}
bash scripts/setup.sh >/dev/null

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DPREFECT_CYCLE_FUZZ=ON -DBUILD_TESTING=OFF -DPREFECT_CYCLE_WERROR=ON >/dev/null
cmake --build build-fuzz -j2 --target fuzz_config fuzz_decode fuzz_job_config fuzz_command_split fuzz_redact_url \
  | tail -1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/crashes
failed=0
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in fuzz_config fuzz_decode fuzz_job_config fuzz_command_split fuzz_redact_url; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  log="$work/$target.log"
  if build-fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$target-" \
      "$corpus" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5 || true
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
  printf 'fuzz: %-20s %-6s %10s execs in %s s, coverage %s edges, corpus %s inputs\n' \
    "$target" "$status" "$execs" "$seconds" "$cov" "$(ls "$corpus" | wc -l)"
done
exit $failed
