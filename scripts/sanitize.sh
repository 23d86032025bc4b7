#!/usr/bin/env bash
# The unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer in a
# second build directory (build-asan); any report fails (halt_on_error, leaks
# on). Ends with CTest's summary line.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null
bash scripts/setup.sh >/dev/null || exit 1
# -O1 -g1: under ASan a third of the compile time of -O2 -g (config_test.cpp
# 36.6 s -> 12.9 s on this machine), and reports keep their line numbers.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DPREFECT_CYCLE_SANITIZE=ON -DPREFECT_CYCLE_PCH=ON \
  -DPREFECT_CYCLE_WERROR=ON >/dev/null || exit 1
cmake --build build-asan -j2 | tail -1
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2
