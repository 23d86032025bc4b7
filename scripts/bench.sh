#!/usr/bin/env bash
# Benchmarks prefect-cycle against Prefect's own worker (issue 7): starts a
# local Prefect server per backend and runs each scenario with every contender,
# alternating. Besides wall time, CPU and memory of the controller, it reports the
# flow processes' total PSS (the sum of each flow process's peak Pss, sampled every
# 0.15 s; what is summed: bench/bench.py's docstring).
# Prints the table and writes bench/results/<date>.md. See docs/benchmarks.md.
#
#   BENCH_BACKENDS=sqlite,postgres  the server's database, one server per backend,
#                           one after the other (postgres: a throwaway PostgreSQL as
#                           tests/e2e/pg_server.py starts it; also --backends)
#   BENCH_REPEATS=3         repetitions per contender and scenario
#   BENCH_SCENARIOS=1,2,3   which scenarios (4, the exit lag, is measured in 2 and 3;
#                           5 is 20 cheap runs at limit 20; 6 is 20 runs at limit 5 of a
#                           flow importing bench/heavy/bench_heavy.py, ~1 s to import)
#   BENCH_CONTENDERS=...    comma list of baseline, prefect-cycle, prefect-cycle-warm
#                           (PREFECT_CYCLE_WARM_START=true; in 6 also
#                           PREFECT_CYCLE_PRELOAD_MODULES=bench_heavy), floor, floor-claim
#                           (also --contenders); default: baseline and prefect-cycle,
#                           plus prefect-cycle-warm in 2 and 6, plus the floors in 3
#   BENCH_LATENCY_MS=0      comma list: 100 puts the e2e proxy holding every answer
#                           100 ms between the contenders and the server (also
#                           --latency-ms); each value is its own column
#   BENCH_REPEATS_1=5       repetitions in scenario 1 (cheap; the most sensitive to noise)
#   BENCH_SETTLE=3          seconds of quiet before each scenario-1 run
#   BENCH_SINGLE_REPEATS=1  runs of the one-shot (not looped) baseline in 2 and 3
#   BENCH_OUT=path.md       where to write the results (default bench/results/<date>.md)
#   BENCH_BUILD=1           rebuild even if build/prefect-cycle exists
#   PREFECT_CYCLE_BIN=path  benchmark this binary instead of build/prefect-cycle
#                           (then scripts/build.sh is only run for a missing .venv)
#
#   scripts/bench.sh --field  (or BENCH_SCENARIOS=field) runs the field scenario
#                           instead (bench/field.py, issue 30): a repository with
#                           requests, pandas, SQLAlchemy and psycopg2-binary from PyPI,
#                           idle and 3-run ticks, fresh container / kept volume / kept
#                           host, against the Python cycle doing the same sync and
#                           install; writes bench/results/<date>-field.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${PREFECT_CYCLE_BIN:-build/prefect-cycle}
if [ ! -x "$bin" ] || [ ! -x .venv/bin/prefect ] || [ "${BENCH_BUILD:-0}" = 1 ]; then
  if [ -n "${PREFECT_CYCLE_BIN:-}" ] && [ ! -x "$bin" ]; then
    echo "bench: PREFECT_CYCLE_BIN=$bin is not an executable" >&2; exit 2
  fi
  bash scripts/build.sh
fi
for tool in curl xargs; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
if [ "${1:-}" = --field ] || [ "${BENCH_SCENARIOS:-}" = field ]; then
  exec .venv/bin/python bench/field.py
fi
exec .venv/bin/python bench/bench.py "$@"
