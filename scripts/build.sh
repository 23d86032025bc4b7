#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh) and builds build/prefect-cycle and
# the unit tests (build/tests/unit/unit_tests, registered with CTest), warnings
# as errors. Two compile jobs: the machines are small and shared.
# Arguments name the targets to build instead of all of them:
# `scripts/build.sh prefect-cycle` builds the binary alone (the demo does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# -O2 without debug info: the tests need no debugger, and -g costs a third of
# the compile time. (CMake's Release is -O3, where GCC 12 warns falsely about
# memcpy bounds in <string>.)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DPREFECT_CYCLE_WERROR=ON -DPREFECT_CYCLE_PCH=ON >/dev/null
cmake --build build -j2 ${1:+--target "$@"}
