#!/usr/bin/env bash
# Benchmarks prefect-cycle against Prefect's own worker (issue 7): starts one
# local Prefect server and runs each scenario with both contenders, alternating.
# Prints the table and writes bench/results/<date>.md. See docs/benchmarks.md.
#
#   BENCH_REPEATS=3         repetitions per contender and scenario
#   BENCH_SCENARIOS=1,2,3   which scenarios (4, the exit lag, is measured in 2 and 3)
#   BENCH_SINGLE_REPEATS=1  runs of the one-shot (not looped) baseline in 2 and 3
#   BENCH_OUT=path.md       where to write the results (default bench/results/<date>.md)
#   BENCH_BUILD=1           rebuild even if build/prefect-cycle exists
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x build/prefect-cycle ] || [ ! -x .venv/bin/prefect ] || [ "${BENCH_BUILD:-0}" = 1 ]; then
  bash scripts/build.sh
fi
for tool in curl xargs; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
exec .venv/bin/python bench/bench.py "$@"
