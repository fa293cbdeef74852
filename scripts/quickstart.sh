#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on the embedded
# default: `ironboot demo --upgrade-to v1.12.0 --exit-when-done`. It makes a
# git repo from examples/homelab on loopback addresses (3 control planes, 2
# workers), serves it, boots a simulated fleet through it over real HTTP and
# gRPC+mTLS, bootstraps etcd once, then commits Talos v1.12.0 and follows the
# rolling upgrade until every machine runs it (exit 0). No network needed.
# Extra arguments go to `ironboot demo` (e.g. --address 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/controller/ironboot demo --upgrade-to v1.12.0 --exit-when-done \
  --address "${IRONBOOT_ADDRESS:-127.0.0.1:8080}" "$@"
