#!/usr/bin/env bash
# The whole test suite: installs the missing Debian packages, builds everything in Release (tests,
# benchmarks, examples) and runs ctest; then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer (TAPEGRAD_SANITIZE=ON, Debug; benchmarks and examples are not built
# there, to save time) and runs ctest once more. Exits non-zero on the first failure.
#
# Environment: TAPEGRAD_BUILD_DIR (default build-release, shared with scripts/quickstart.sh),
# TAPEGRAD_SANITIZE_BUILD_DIR (default build-sanitize).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${TAPEGRAD_BUILD_DIR:-build-release}
sanitize_dir=${TAPEGRAD_SANITIZE_BUILD_DIR:-build-sanitize}
jobs=$(nproc)
timeout=600  # seconds a test may take (unless it sets its own): a hang fails instead of waiting
start=$SECONDS
phase() { echo; echo "== test.sh [$((SECONDS - start)) s]: $*"; }

phase "Debian packages"
bash scripts/install-deps.sh

phase "Release build in $build_dir"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" -j"$jobs"
phase "Release tests"
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" --timeout "$timeout"

phase "AddressSanitizer + UndefinedBehaviorSanitizer build in $sanitize_dir"
cmake -S . -B "$sanitize_dir" -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_SANITIZE=ON \
  -DTAPEGRAD_BUILD_BENCH=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF
cmake --build "$sanitize_dir" -j"$jobs"
phase "sanitized tests"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  ctest --test-dir "$sanitize_dir" --output-on-failure -j"$jobs" --timeout "$timeout"

phase "all tests passed"
