#!/usr/bin/env bash
# Installs what is missing, builds, and runs ironboot on the embedded example:
# the seed's three control planes as a Matchbox data dir (examples/matchbox).
# Try: curl 'http://127.0.0.1:8080/ipxe?mac=00:23:24:e7:29:40'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/controller/ironboot serve -address "${IRONBOOT_ADDRESS:-127.0.0.1:8080}" \
  -data-path examples/matchbox
