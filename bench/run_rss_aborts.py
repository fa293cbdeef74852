#!/usr/bin/env python3
"""serve's memory over many aborted downloads (issue 15).

Starts `ironboot serve` in Matchbox mode on a free 127.0.0.1 port with a
64 MiB sparse asset, then N times: connect, ask for the asset, read a few KB,
close (every other one with a TCP reset, as a PXE client that is
power-cycled). Samples serve's VmRSS after a warm-up and then every tenth of
the run, and prints a results row. The process must survive (it died of
SIGPIPE before 44a5ee3) and its RSS stay flat.

  bench/run_rss_aborts.py [--ironboot build/controller/ironboot] [--aborts 10000]
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def abort_one(port, reset):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /assets/big.img HTTP/1.1\r\nHost: boot\r\n\r\n")
    s.recv(2048)
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ironboot", default="build/controller/ironboot")
    ap.add_argument("--aborts", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        for d in ("groups", "profiles", "assets"):
            os.makedirs(os.path.join(data, d))
        with open(os.path.join(data, "assets", "big.img"), "wb") as f:
            f.truncate(64 << 20)
        port = free_port()
        log = open(os.path.join(tmp, "serve.log"), "w")
        serve = subprocess.Popen([args.ironboot, "serve", "-address", f"127.0.0.1:{port}",
                                  "-data-path", data, "-log-level", "warn"],
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or serve.poll() is not None:
                        sys.exit("serve did not start")
                    time.sleep(0.05)
            warmup = min(500, args.aborts // 10)
            for i in range(warmup):
                abort_one(port, i % 2 == 0)
            time.sleep(1)
            base = rss_kb(serve.pid)
            cpu0 = cpu_seconds(serve.pid)
            start = time.time()
            samples = []
            step = max(1, args.aborts // 10)
            for i in range(args.aborts):
                abort_one(port, i % 2 == 0)
                if (i + 1) % step == 0:
                    if serve.poll() is not None:
                        sys.exit(f"serve died after {warmup + i + 1} aborts: exit {serve.returncode}")
                    samples.append(rss_kb(serve.pid))
            elapsed = time.time() - start
            time.sleep(1)
            end = rss_kb(serve.pid)
            alive = serve.poll() is None
            print("| aborts | serve alive | RSS after warm-up (kB) | max RSS (kB) | RSS at end (kB) | "
                  "change | wall (s) | serve CPU (s) |")
            print("|---|---|---|---|---|---|---|---|")
            print(f"| {args.aborts} | {'yes' if alive else 'NO'} | {base} | {max(samples)} | {end} | "
                  f"{(end - base) * 100.0 / base:+.1f} % | {elapsed:.1f} | "
                  f"{cpu_seconds(serve.pid) - cpu0:.2f} |")
            sys.exit(0 if alive and abs(end - base) <= base * 0.10 else 1)
        finally:
            serve.terminate()
            serve.wait(timeout=15)


if __name__ == "__main__":
    main()
