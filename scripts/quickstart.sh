#!/usr/bin/env bash
# Quick start: installs the missing Debian packages, builds tapegrad (Release) and runs the main
# job, tapegrad-train: an MLP trained on Fashion-MNIST (Debian's dataset-fashion-mnist), with its
# per-epoch figures, test accuracy, confusion matrix, dead units and a plot (tapegrad-train.png).
# Arguments go to the program: `bash scripts/quickstart.sh --epochs 3 --activation elu`, `--help`.
#
# Environment: TAPEGRAD_BUILD_DIR (default build-release, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${TAPEGRAD_BUILD_DIR:-build-release}
main_target=tapegrad-train
main_program=examples/tapegrad-train

bash scripts/install-deps.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" --target "$main_target" -j"$(nproc)"
echo
"$build_dir/$main_program" "$@"
