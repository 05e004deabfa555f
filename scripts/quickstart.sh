#!/usr/bin/env bash
# Quick start: installs the missing Debian packages, builds tapegrad (Release) and runs the main
# job, for now examples/hello_gradient (a gradient, and the choice made at a kink). Arguments go
# to the program: `bash scripts/quickstart.sh --x 1 --y 0.25`.
#
# Environment: TAPEGRAD_BUILD_DIR (default build-release, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${TAPEGRAD_BUILD_DIR:-build-release}
main_target=hello_gradient
main_program=examples/hello_gradient

bash scripts/install-deps.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" --target "$main_target" -j"$(nproc)"
echo
"$build_dir/$main_program" "$@"
