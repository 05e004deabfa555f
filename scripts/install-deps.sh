#!/usr/bin/env bash
# Installs the Debian 12 packages tapegrad needs to build, test and run, if any is missing.
# Run as root (or as a user with sudo). Used by quickstart.sh and test.sh; a second run only asks
# dpkg and installs nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config  # compiler, CMake >= 3.25
  libfmt-dev librange-v3-dev         # used by the libraries
  libopenblas-dev libeigen3-dev zlib1g-dev
  libcli11-dev                       # the example programs' command lines
  catch2 libbenchmark-dev            # tests, benchmarks
  gnuplot-nox python3-numpy          # plots and reference computations
  dataset-fashion-mnist              # the training data
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps.sh: dpkg-query not found; this script is for Debian 12 (apt/dpkg)" >&2
  exit 1
fi

# One dpkg-query for all: "ii <name>" for each installed package (it fails on unknown names).
installed=" $(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' "${packages[@]}" 2>/dev/null |
              awk '/^ii/ { printf "%s ", $2 }' || true)"
missing=()
for p in "${packages[@]}"; do
  [[ "$installed" == *" $p "* ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps.sh: all ${#packages[@]} Debian packages are installed"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-deps.sh: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
