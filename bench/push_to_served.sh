#!/usr/bin/env bash
# Push-to-served benchmark (issue 3): the time from `git push` returning to
# the pushed config being served on /config?mac=..., for
#   webhook  ironboot serve --interval 1h; right after each push the script
#            sends a signed GitHub push delivery (X-Hub-Signature-256) to
#            POST /hooks/git, as a forge would;
#   polling  ironboot serve --interval 2s and no webhook.
# The repository is examples/homelab (its TalosRelease pointed at local
# file:// assets with sha512, so nothing leaves the machine), pushed to a
# bare repo served by git daemon on 127.0.0.1. Each push changes
# controlplane1's address, which appears in its machine config.
#
# Goals: webhook median < 500 ms; polling max <= interval + 1 s.
#
# Usage: bench/push_to_served.sh [-b path/to/ironboot] [-n webhook_pushes] [-p polling_pushes]
#        (defaults: the newest build-*/controller/ironboot, 20, 8)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
binary=""
pushes=20
poll_pushes=8
interval=2
while getopts "b:n:p:" opt; do
  case "$opt" in
    b) binary="$OPTARG" ;;
    n) pushes="$OPTARG" ;;
    p) poll_pushes="$OPTARG" ;;
    *) echo "usage: $0 [-b ironboot] [-n webhook_pushes] [-p polling_pushes]" >&2; exit 2 ;;
  esac
done
if [[ -z "$binary" ]]; then
  binary="$(ls -t "$here"/build-*/controller/ironboot 2>/dev/null | head -1 || true)"
fi
[[ -x "$binary" ]] || { echo "no ironboot binary (use -b)" >&2; exit 2; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@ironboot.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@ironboot.invalid

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Assets and the repository.
mkdir -p "$tmp/assets" "$tmp/srv" "$tmp/work"
head -c 1048576 /dev/urandom >"$tmp/assets/vmlinuz"
head -c 1048576 /dev/urandom >"$tmp/assets/initramfs.xz"
ksum="$(sha512sum "$tmp/assets/vmlinuz" | cut -d' ' -f1)"
isum="$(sha512sum "$tmp/assets/initramfs.xz" | cut -d' ' -f1)"
git init -q --bare -b main "$tmp/srv/cluster.git"
cp -r "$here/examples/homelab/." "$tmp/work/"
# Keep the Cluster document; the TalosRelease gets local assets.
python3 - "$tmp/work/cluster.yaml" <<'EOF'
import sys
p = sys.argv[1]
text = open(p).read()
open(p, "w").write(text[: text.index("\n---\n") + 1])
EOF
mkdir -p "$tmp/work/releases"
cat >"$tmp/work/releases/v1.11.3.yaml" <<EOF
apiVersion: ironboot.dev/v1alpha1
kind: TalosRelease
metadata:
  name: talos-v1.11.3-amd64
spec:
  version: v1.11.3
  arch: amd64
  kernel:
    url: file://$tmp/assets/vmlinuz
    sha512: $ksum
  initramfs:
    url: file://$tmp/assets/initramfs.xz
    sha512: $isum
EOF
git -C "$tmp/work" init -q -b main
git -C "$tmp/work" remote add origin "git://127.0.0.1:0/cluster.git"  # port set below
git -C "$tmp/work" add -A
git -C "$tmp/work" commit -q -m homelab

git_port="$(free_port)"
git -C "$tmp/work" remote set-url origin "$tmp/srv/cluster.git"
git -C "$tmp/work" push -q origin HEAD:main
setsid "$(git --exec-path)/git-daemon" --reuseaddr --base-path="$tmp/srv" --export-all \
  --listen=127.0.0.1 --port="$git_port" "$tmp/srv" >"$tmp/git-daemon.log" 2>&1 &
pids+=($!)
# Pushes go over git:// like a forge's; the daemon must allow receive-pack.
git -C "$tmp/srv/cluster.git" config daemon.receivepack true
git -C "$tmp/work" remote set-url origin "git://127.0.0.1:$git_port/cluster.git"
for _ in $(seq 100); do
  git ls-remote "git://127.0.0.1:$git_port/cluster.git" >/dev/null 2>&1 && break
  sleep 0.05
done

secret="bench-secret-$RANDOM$RANDOM"
printf '%s\n' "$secret" >"$tmp/webhook-secret"

# start_server NAME INTERVAL [extra flags...]: starts ironboot, waits for /readyz.
start_server() {
  local name="$1" every="$2"
  shift 2
  http_port="$(free_port)"
  setsid "$binary" serve --repo "git://127.0.0.1:$git_port/cluster.git" --ref main \
    --state-dir "$tmp/state-$name" -address "127.0.0.1:$http_port" --interval "$every" \
    --log-level warn "$@" >"$tmp/$name.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 600); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" == 200 ]] && return 0
    sleep 0.05
  done
  echo "ironboot did not become ready; log:" >&2
  cat "$tmp/$name.log" >&2
  exit 1
}

# measure MODE N: N pushes; prints one latency (ms) per line.
measure() {
  python3 - "$1" "$2" "$tmp/work" "$http_port" "$secret" "$3" <<'EOF'
import hashlib, hmac, http.client, re, subprocess, sys, time
mode, n, work, port, secret, start = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
body = b'{"ref":"refs/heads/main"}'
sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
machine = open(f"{work}/machines/controlplane1.yaml").read()
def git(*args):
    subprocess.run(["git", "-C", work, *args], check=True, stdout=subprocess.DEVNULL)
def config():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/config?mac=00-23-24-e7-29-40")
    text = c.getresponse().read().decode()
    c.close()
    return text
for i in range(n):
    address = f"10.0.4.{start + i}/24"
    with open(f"{work}/machines/controlplane1.yaml", "w") as f:
        f.write(re.sub(r"address: \S+", "address: " + address, machine))
    git("commit", "-q", "-am", f"address {address}")
    git("push", "-q", "origin", "HEAD:main")
    t0 = time.monotonic()
    if mode == "webhook":
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/hooks/git", body, {"Content-Type": "application/json",
                  "X-GitHub-Event": "push", "X-Hub-Signature-256": sig})
        status = c.getresponse().status
        c.close()
        assert status == 202, status
    while address not in config():
        if time.monotonic() - t0 > 30:
            sys.exit(f"push {i}: {address} not served after 30 s")
        time.sleep(0.005)
    print(f"{(time.monotonic() - t0) * 1000:.1f}", flush=True)
    if mode == "polling":
        # Push at a random phase of the poll cycle, as real pushes come.
        time.sleep((i * 0.37) % 1.0)
EOF
}

summary() {
  python3 -c '
import statistics, sys
v = [float(x) for x in sys.stdin.read().split()]
print(f"n={len(v)} median={statistics.median(v):.0f} ms min={min(v):.0f} ms max={max(v):.0f} ms")'
}

start_server webhook 1h --webhook-secret-file "$tmp/webhook-secret"
webhook_ms="$(measure webhook "$pushes" 150)"
kill "$server_pid"

start_server polling "${interval}s"
polling_ms="$(measure polling "$poll_pushes" 200)"
kill "$server_pid"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "webhook (interval 1h), goal median < 500 ms:   $(summary <<<"$webhook_ms")"
echo "polling (interval ${interval}s), goal max <= $((interval + 1))000 ms: $(summary <<<"$polling_ms")"
if grep -q "$secret" "$tmp"/*.log; then
  echo "ERROR: the webhook secret appears in ironboot's log" >&2
  exit 1
fi
