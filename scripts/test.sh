#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration on
# loopback, end-to-end). Extra arguments go to ctest, e.g. `-L bootserver`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 --parallel 2 "$@"
