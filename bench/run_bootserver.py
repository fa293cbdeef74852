#!/usr/bin/env python3
"""Boot-server benchmark (issue 2): ironboot vs nginx on loopback, in one run.

Generates two Matchbox data dirs (10 and 10,000 groups/profiles) and a 64 MiB
asset in a temp dir, starts two `ironboot serve` processes and one private
nginx on free 127.0.0.1 ports, and runs wrk against:

  ipxe-10      ironboot  /ipxe?mac=<rotating over the 10 MACs>
  ipxe-10000   ironboot  /ipxe?mac=<rotating over the 10,000 MACs>
  ipxe-nginx   nginx     the same requests, answered with a static file whose
                         bytes are exactly ironboot's iPXE script
  asset-iron   ironboot  /assets/big.bin (64 MiB), 50 connections
  asset-nginx  nginx     the same file (same inode, same page cache)

Each round runs every case once (interleaved, so machine load hits all of
them alike); the table reports the median over rounds and the goal ratios.
Fairness: nginx gets as many worker processes as ironboot has threads,
access logs on for both (ironboot's info log to a file, nginx's access_log to
a file), keep-alive on both (nginx keepalive_requests raised so it does not
close connections ironboot would keep), sendfile on for nginx.

Not part of ctest. Usage:
  bench/run_bootserver.py --ironboot build-bench/controller/ironboot [--rounds 3] [--duration 10]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

KERNEL_ARGS = [
    "initrd=initramfs.xz", "init_on_alloc=1", "init_on_free=1", "slab_nomerge", "pti=on",
    "console=tty0", "console=ttyS0", "printk.devkmsg=on", "talos.platform=metal",
]


def mac_for(i):
    return "02:00:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)


def make_data_dir(root, n_groups):
    """A Matchbox data dir shaped like examples/matchbox: one group (MAC
    selector) and one profile per machine. Returns the MACs."""
    os.makedirs(os.path.join(root, "groups"))
    os.makedirs(os.path.join(root, "profiles"))
    os.makedirs(os.path.join(root, "assets"))
    macs = []
    for i in range(n_groups):
        mac = mac_for(i)
        macs.append(mac)
        pid = "node-%05d" % i
        profile = {
            "id": pid,
            "name": "Talos node %d" % i,
            "boot": {
                "kernel": "/assets/talos/1.11.3/amd64/vmlinuz",
                "initrd": ["/assets/talos/1.11.3/amd64/initramfs.xz"],
                # Same length for every node, so every reply has the same size.
                "args": KERNEL_ARGS + ["talos.config=http://10.0.112.2/assets/talos/1.11.3/node-%05d.yaml" % i],
            },
        }
        group = {"id": pid, "name": "Node %d" % i, "profile": pid, "selector": {"mac": mac}}
        with open(os.path.join(root, "profiles", pid + ".json"), "w") as f:
            json.dump(profile, f)
        with open(os.path.join(root, "groups", pid + ".json"), "w") as f:
            json.dump(group, f)
    return macs


def write_wrk_lua(path, macs):
    """Each wrk thread walks the MAC list from its own offset, so every
    request asks for a different machine (the index is exercised, not one
    hot entry)."""
    with open(path, "w") as f:
        f.write("local macs = {\n")
        for m in macs:
            f.write('  "%s",\n' % m)
        f.write("}\n")
        f.write(
            "local n = #macs\n"
            "local i = 0\n"
            "local counter = 0\n"
            "function setup(thread)\n"
            "  counter = counter + 1\n"
            "  thread:set(\"start\", counter * 7919)\n"
            "end\n"
            "function init(args)\n"
            "  i = (start or 0) % n\n"
            "end\n"
            "function request()\n"
            "  i = i + 1\n"
            "  if i > n then i = 1 end\n"
            "  return wrk.format(\"GET\", \"/ipxe?mac=\" .. macs[i])\n"
            "end\n"
        )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, proc, what, deadline_s=60):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("bench: %s exited with %d before answering %s" % (what, proc.returncode, url))
        try:
            status, _ = http_get(url, timeout=1)
            if status == 200:
                return
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit("bench: %s did not answer %s within %ds" % (what, url, deadline_s))


def vm_status(pid, key):
    """VmHWM / VmRSS of a process in KiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids):
    """utime + stime of the processes (all threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def nginx_pids(master_pid):
    pids = [master_pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master_pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    return pids


UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def parse_size(text):
    """wrk's '1.23GB' -> bytes."""
    text = text.strip()
    for suffix in ("B",):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    unit = text[-1] if text and text[-1] in "KMGT" else ""
    number = float(text[:-1] if unit else text)
    return number * UNITS[unit]


def run_wrk(args, url, lua=None, connections=None, timeout="10s"):
    cmd = ["wrk", "-t%d" % args.wrk_threads, "-c%d" % (connections or args.connections),
           "-d%ds" % args.duration, "--timeout", timeout]
    if lua:
        cmd += ["-s", lua]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = {"rps": None, "bps": None, "non2xx": 0, "errors": 0, "requests": 0, "p50_ms": None, "raw": out}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            result["rps"] = float(s.split()[1])
        elif s.startswith("Transfer/sec:"):
            result["bps"] = parse_size(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            result["non2xx"] = int(s.split()[-1])
        elif s.startswith("Socket errors:"):
            # Socket errors: connect 0, read 0, write 0, timeout 0
            parts = s.replace(",", "").split()
            result["errors"] = sum(int(parts[i]) for i in range(3, len(parts), 2))
        elif "requests in" in s:
            result["requests"] = int(s.split()[0])
    return result


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
  access_log {tmp}/nginx-access.log;
  sendfile on;
  sendfile_max_chunk {sendfile_max_chunk};
  keepalive_timeout 65;
  keepalive_requests 100000000;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  types {{ application/octet-stream bin; }}
  default_type text/plain;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    # /ipxe?mac=... answers with the static copy of ironboot's iPXE script.
    location = /ipxe {{ try_files /ipxe.txt =404; }}
    location /assets/ {{ root {assets_parent}; }}
  }}
}}
"""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_bin = os.path.join(os.path.dirname(here), "build-bench", "controller", "ironboot")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ironboot", default=os.environ.get("IRONBOOT_BINARY", default_bin))
    p.add_argument("--rounds", type=int, default=3, help="rounds; the table shows the median")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--server-threads", type=int, default=2, help="ironboot --threads = nginx worker_processes")
    p.add_argument("--groups", type=int, default=10000)
    p.add_argument("--asset-mib", type=int, default=64)
    p.add_argument("--skip-assets", action="store_true")
    p.add_argument("--only", help="comma-separated case names to run (e.g. asset-ironboot,asset-nginx)")
    p.add_argument("--nginx-sendfile-max-chunk", default="2m",
                   help="nginx sendfile_max_chunk (nginx 1.22 default 2m; 0 = unlimited)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs) for inspection")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()

    if not os.access(args.ironboot, os.X_OK):
        sys.exit("bench: %s is not an executable ironboot (build it: cmake --build build-bench --target ironboot)" % args.ironboot)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench: %s not found (scripts/install-deps.sh installs it)" % tool)
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"

    tmp = tempfile.mkdtemp(prefix="ironboot-bench-")
    os.chmod(tmp, 0o755)
    procs = []

    def cleanup():
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if args.keep:
            print("bench: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    try:
        print("bench: generating data dirs in %s ..." % tmp, flush=True)
        small_dir = os.path.join(tmp, "data-10")
        big_dir = os.path.join(tmp, "data-big-%d" % args.groups)
        small_macs = make_data_dir(small_dir, 10)
        big_macs = make_data_dir(big_dir, args.groups)
        small_lua = os.path.join(tmp, "macs-10.lua")
        big_lua = os.path.join(tmp, "macs-%d.lua" % args.groups)
        write_wrk_lua(small_lua, small_macs)
        write_wrk_lua(big_lua, big_macs)
        # One 64 MiB asset, shared by both servers (ironboot's small dir serves it).
        asset = os.path.join(small_dir, "assets", "big.bin")
        with open(asset, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(args.asset_mib):
                f.write(chunk)

        def start_ironboot(name, data_dir):
            port = free_port()
            log = open(os.path.join(tmp, "ironboot-%s.log" % name), "w")
            proc = subprocess.Popen(
                [args.ironboot, "serve", "-address", "127.0.0.1:%d" % port, "-data-path", data_dir,
                 "-log-level", "info", "--threads", str(args.server_threads), "--max-connections", "4096"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            procs.append(proc)
            wait_http("http://127.0.0.1:%d/readyz" % port, proc, "ironboot (%s)" % name)
            return proc, port

        iron_small, small_port = start_ironboot("10", small_dir)
        iron_big, big_port = start_ironboot(str(args.groups), big_dir)
        _, ready = http_get("http://127.0.0.1:%d/readyz" % big_port)
        print("bench: ironboot %s: %s" % (args.groups, ready.decode().strip()), flush=True)

        # Check every MAC selects its own profile, and take the script bytes for nginx.
        _, script = http_get("http://127.0.0.1:%d/ipxe?mac=%s" % (small_port, small_macs[0]))
        for port, macs in ((small_port, small_macs), (big_port, big_macs[:: max(1, len(big_macs) // 50)])):
            for i, mac in enumerate(macs):
                status, body = http_get("http://127.0.0.1:%d/ipxe?mac=%s" % (port, mac))
                if status != 200 or len(body) != len(script) or b"node-" not in body:
                    sys.exit("bench: /ipxe?mac=%s on port %d answered %d (%d bytes)" % (mac, port, status, len(body)))

        nginx_root = os.path.join(tmp, "nginx-root")
        os.makedirs(nginx_root)
        with open(os.path.join(nginx_root, "ipxe.txt"), "wb") as f:
            f.write(script)
        nginx_port = free_port()
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=args.server_threads, tmp=tmp, user=user, port=nginx_port,
                                      root=nginx_root, assets_parent=small_dir,
                                      sendfile_max_chunk=args.nginx_sendfile_max_chunk))
        nginx = subprocess.Popen([nginx_bin, "-p", tmp, "-c", conf], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "nginx-stderr.log"), "w"))
        procs.append(nginx)
        wait_http("http://127.0.0.1:%d/ipxe?mac=%s" % (nginx_port, small_macs[0]), nginx, "nginx")
        _, nbody = http_get("http://127.0.0.1:%d/ipxe?mac=%s" % (nginx_port, small_macs[0]))
        assert nbody == script, "nginx does not serve the same bytes"
        print("bench: iPXE script %d bytes; servers: ironboot-10 :%d, ironboot-%d :%d, nginx :%d" %
              (len(script), small_port, args.groups, big_port, nginx_port), flush=True)

        all_nginx = nginx_pids(nginx.pid)
        cases = [
            ("ipxe-10", "http://127.0.0.1:%d" % small_port, small_lua),
            ("ipxe-%d" % args.groups, "http://127.0.0.1:%d" % big_port, big_lua),
            ("ipxe-nginx", "http://127.0.0.1:%d" % nginx_port, big_lua),
        ]
        if not args.skip_assets:
            cases += [
                ("asset-ironboot", "http://127.0.0.1:%d/assets/big.bin" % small_port, None),
                ("asset-nginx", "http://127.0.0.1:%d/assets/big.bin" % nginx_port, None),
            ]
        if args.only:
            wanted = args.only.split(",")
            cases = [c for c in cases if c[0] in wanted]
        server_pids = {
            "ipxe-10": [iron_small.pid], "ipxe-%d" % args.groups: [iron_big.pid], "ipxe-nginx": all_nginx,
            "asset-ironboot": [iron_small.pid], "asset-nginx": all_nginx,
        }
        results = {name: [] for name, _, _ in cases}
        loads = []
        for rnd in range(args.rounds):
            loads.append(loadavg())
            for name, url, lua in cases:
                cpu_before = cpu_seconds(server_pids[name])
                r = run_wrk(args, url, lua, timeout="60s" if lua is None else "10s")
                r["server_cpu_s"] = cpu_seconds(server_pids[name]) - cpu_before
                results[name].append(r)
                if r["non2xx"] or r["errors"]:
                    print("bench: WARNING %s: %d non-2xx, %d socket errors" % (name, r["non2xx"], r["errors"]))
                print("bench: round %d %-15s %10.0f req/s %10.1f MiB/s  server CPU %5.2fs  (load %s)" %
                      (rnd + 1, name, r["rps"], r["bps"] / 2 ** 20, r["server_cpu_s"], loadavg()), flush=True)
        loads.append(loadavg())

        def med(name, key):
            return statistics.median(r[key] for r in results[name])

        hwm = {
            "ironboot-10 (served the asset)": vm_status(iron_small.pid, "VmHWM"),
            "ironboot-%d" % args.groups: vm_status(iron_big.pid, "VmHWM"),
        }
        nginx_hwm = [vm_status(pid, "VmHWM") for pid in nginx_pids(nginx.pid)]

        print()
        print("machine: nproc=%d, CPU %s" % (os.cpu_count(), cpu_model()))
        print("load average at round starts / end: %s" % " | ".join(loads))
        print("wrk -t%d -c%d -d%ds, %d round(s), median shown; ironboot --threads %d, nginx worker_processes %d" %
              (args.wrk_threads, args.connections, args.duration, args.rounds, args.server_threads, args.server_threads))
        print()
        # Server CPU per unit of work does not depend on how much CPU other
        # processes left us, so it is the steadier figure on a busy machine.
        for rs in results.values():
            for r in rs:
                work = r["requests"] if r["requests"] else 0
                r["cpu_us_per_req"] = r["server_cpu_s"] * 1e6 / work if work else None
                r["cpu_ms_per_gib"] = r["server_cpu_s"] * 1e3 / (r["bps"] * args.duration / 2 ** 30) if r["bps"] else None
        print("| case | server | median | all rounds | server CPU (median) |")
        print("|---|---|---|---|---|")
        for name, _, lua in cases:
            server = "nginx" if "nginx" in name else "ironboot"
            if lua:
                vals = ", ".join("%.0f" % r["rps"] for r in results[name])
                print("| %s | %s | %.0f req/s | %s | %.1f us/request |" % (name, server, med(name, "rps"), vals, med(name, "cpu_us_per_req")))
            else:
                vals = ", ".join("%.0f" % (r["bps"] / 2 ** 20) for r in results[name])
                print("| %s | %s | %.0f MiB/s | %s | %.0f ms/GiB |" % (name, server, med(name, "bps") / 2 ** 20, vals, med(name, "cpu_ms_per_gib")))
        print()
        big = "ipxe-%d" % args.groups
        goals = []
        if big in results and "ipxe-nginx" in results:
            goals.append(("ipxe %d groups / nginx >= 0.80" % args.groups, med(big, "rps") / med("ipxe-nginx", "rps"), 0.80))
        if big in results and "ipxe-10" in results:
            goals.append(("ipxe %d groups / 10 groups >= 0.90" % args.groups, med(big, "rps") / med("ipxe-10", "rps"), 0.90))
        if "asset-ironboot" in results and "asset-nginx" in results:
            goals.append(("asset ironboot / nginx >= 0.90", med("asset-ironboot", "bps") / med("asset-nginx", "bps"), 0.90))
        print("| goal | ratio | verdict |")
        print("|---|---|---|")
        for label, ratio, want in goals:
            print("| %s | %.2f | %s |" % (label, ratio, "met" if ratio >= want else "MISSED"))
        for label, kib in hwm.items():
            verdict = "met" if kib is not None and kib < 64 * 1024 else "MISSED"
            if "asset" in label or "served" in label:
                print("| peak RSS (VmHWM) %s < 64 MiB | %.1f MiB | %s |" % (label, (kib or 0) / 1024, verdict))
            else:
                print("| peak RSS (VmHWM) %s (info) | %.1f MiB | - |" % (label, (kib or 0) / 1024))
        print("| nginx VmHWM master+workers (info) | %s MiB | - |" %
              " + ".join("%.1f" % ((k or 0) / 1024) for k in nginx_hwm))
        bad = {n: sum(r["non2xx"] + r["errors"] for r in rs) for n, rs in results.items()}
        print("non-2xx responses + socket errors per case: %s" % bad)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"results": {n: [{k: v for k, v in r.items() if k != "raw"} for r in rs]
                                       for n, rs in results.items()},
                           "loads": loads, "vmhwm_kib": hwm, "nginx_vmhwm_kib": nginx_hwm}, f, indent=1)
        # Log sanity: both servers really logged every request.
        for name in ("10", str(args.groups)):
            path = os.path.join(tmp, "ironboot-%s.log" % name)
            print("ironboot-%s log: %d MiB" % (name, os.path.getsize(path) >> 20))
        print("nginx access log: %d MiB" % (os.path.getsize(os.path.join(tmp, "nginx-access.log")) >> 20))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
