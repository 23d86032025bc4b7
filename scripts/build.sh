#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh) and builds build/prefect-cycle and
# the unit tests (build/tests/unit/unit_tests, registered with CTest), warnings
# as errors. Two compile jobs: the machines are small and shared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFECT_CYCLE_WERROR=ON >/dev/null
cmake --build build -j2
