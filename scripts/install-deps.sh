#!/usr/bin/env bash
# Installs every Debian package ironboot needs to build, test and benchmark.
# Idempotent: installs only what is missing, and runs apt-get update at most
# once per machine (or when a package cannot be found).
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ ccache pkg-config git
  # libraries
  libboost-dev nlohmann-json3-dev libyaml-cpp-dev libyaml-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev libgit2-dev libssl-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
  # tools the tests and benchmarks use
  curl wrk nginx-light python3 openssl
  # age CLI: interoperability tests of talos/age (encrypted secrets bundle)
  age
  # TFTP: iPXE binaries served by default; real clients for the TFTP tests
  ipxe tftp-hpa atftp
  # git source tests: smart HTTP (lighttpd runs git http-backend as CGI, TLS), ssh-keygen, sshd
  lighttpd lighttpd-mod-openssl openssh-client openssh-server
  # JSON Schema validator tests: the official JSON Schema Test Suite
  json-schema-test-suite
  # end-to-end network boot (tests/e2e): QEMU with iPXE NIC ROMs, UEFI firmware, busybox initramfs
  qemu-system-x86 ipxe-qemu ovmf busybox-static cpio
  # Talos API client and the simulated fleet's apid: gRPC with mutual TLS, our own .proto
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc zlib1g-dev tar gzip
  # maintenance windows name IANA time zones (TZif files)
  tzdata
  # dashboards/ and alerts: promtool check/test rules, a real Prometheus scraping ironboot;
  # the tests are python3 scripts (YAML), deploy/ is checked with systemd-analyze
  prometheus python3-yaml systemd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/ironboot-update-stamp
if [ ! -f "$stamp" ] || ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update -q
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
