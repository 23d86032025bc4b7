#!/usr/bin/env bash
# clang-tidy with the repository's curated .clang-tidy over every file in src/;
# any finding fails (WarningsAsErrors). Uses its own configure-only build
# directory (build-tidy, no precompiled header: clang cannot read GCC's).
# Prints "tidy: clean (N files)" or the findings and "tidy: N findings".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null
bash scripts/setup.sh >/dev/null || exit 1
cmake -S . -B build-tidy -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DPREFECT_CYCLE_PCH=OFF >/dev/null || exit 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
files=$(git ls-files -- 'src/*.cpp')
count=$(echo "$files" | wc -l)
echo "$files" | xargs -P "$(nproc)" -n 4 clang-tidy -p build-tidy --quiet --use-color=false \
  >"$out" 2>&1
rc=$?
findings=$(grep -cE ': (warning|error): ' "$out")
if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
  grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out"
  echo "tidy: $findings findings (clang-tidy exit $rc)"
  exit 1
fi
echo "tidy: clean ($count files)"
