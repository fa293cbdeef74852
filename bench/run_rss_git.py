#!/usr/bin/env python3
"""RSS of `ironboot serve` over many git polls (issue 15).

libgit2 1.5 leaked pcre2 match data on every fetch (about 113 KB a poll,
~325 MB a day at the default 30 s interval). This script checks that serve's
memory stays flat while it polls a repository that does not change:

- makes, in a temp dir (removed at the end; --keep keeps it), a bare
  repository holding examples/matchbox's groups/ and profiles/ (a repository
  serve accepts with no Talos assets or secrets), and serves it with
  git daemon on a free 127.0.0.1 port (--transport git, the default) or
  passes it as a file:// URL (--transport file);
- starts `ironboot serve -repo URL -ref main -state-dir TMP/state
  -interval 10ms -address 127.0.0.1:PORT -log-level warn` (no -interval
  minimum: 10 ms makes 1,000 polls take well under a minute);
- reads ironboot_source_fetch_total (all results) from /metrics every
  --sample-interval, and VmRSS of the serve process from /proc/PID/status
  when the count first reaches --warm-up (100) and --polls (1,000);
- fails if any fetch failed, and prints one Markdown results row: RSS at the
  two samples, growth per poll, and the ratio (the goal is flat, within
  +/-10 %).

Stdlib only; builds nothing.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise BenchError("timed out after %d s waiting for %s" % (timeout, what))


def git_env():
    env = dict(os.environ)
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"})
    return env


def git(cwd, *args):
    subprocess.run(["git"] + list(args), cwd=cwd, env=git_env(), check=True, capture_output=True)


def make_repo(tmp):
    """A bare repository <tmp>/srv/cluster.git with examples/matchbox's groups/ and profiles/."""
    work = os.path.join(tmp, "work")
    bare = os.path.join(tmp, "srv", "cluster.git")
    os.makedirs(bare)
    git(bare, "init", "-q", "--bare", "-b", "main")
    for sub in ("groups", "profiles"):
        shutil.copytree(os.path.join(SOURCE_DIR, "examples", "matchbox", sub), os.path.join(work, sub))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "bench: examples/matchbox")
    git(work, "push", "-q", bare, "HEAD:main")
    return bare


def metrics_text(port):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def fetch_counts(text):
    """{result: count} from ironboot_source_fetch_total lines."""
    counts = {}
    for m in re.finditer(r'^ironboot_source_fetch_total\{result="(\w+)"\} (\S+)$', text, re.M):
        counts[m.group(1)] = int(float(m.group(2)))
    return counts


def vm_status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(args, tmp):
    bare = make_repo(tmp)
    daemon = None
    procs = []
    try:
        if args.transport == "git":
            git_port = free_port()
            exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                                       check=True).stdout.strip()
            daemon = subprocess.Popen(
                [os.path.join(exec_path, "git-daemon"), "--reuseaddr", "--export-all",
                 "--base-path=" + os.path.join(tmp, "srv"), "--listen=127.0.0.1",
                 "--port=%d" % git_port, os.path.join(tmp, "srv")],
                env=git_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, "git-daemon.log"), "w"))
            procs.append(daemon)
            wait_for(lambda: accepts(git_port), 10, "git daemon on port %d" % git_port)
            url = "git://127.0.0.1:%d/cluster.git" % git_port
        else:
            url = "file://" + bare

        port = free_port()
        serve_log = os.path.join(tmp, "serve.log")
        serve = subprocess.Popen(
            [args.ironboot, "serve", "-repo", url, "-ref", "main", "-state-dir", os.path.join(tmp, "state"),
             "-interval", args.interval, "-address", "127.0.0.1:%d" % port, "-log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=open(serve_log, "w"), stderr=subprocess.STDOUT)
        procs.append(serve)

        def answering():
            if serve.poll() is not None:
                raise BenchError("ironboot serve exited %d; see %s" % (serve.returncode, serve_log))
            try:
                metrics_text(port)
                return True
            except OSError:
                return False
        wait_for(answering, 30, "serve to answer /metrics")

        samples = {}
        t0 = time.time()
        cpu0 = cpu_seconds(serve.pid)
        total = 0
        while total < args.polls:
            if serve.poll() is not None:
                raise BenchError("ironboot serve exited %d; see %s" % (serve.returncode, serve_log))
            if time.time() - t0 > args.timeout:
                raise BenchError("only %d polls in %d s" % (total, args.timeout))
            counts = fetch_counts(metrics_text(port))
            if counts.get("error", 0) > 0:
                raise BenchError("%d fetches failed; see %s" % (counts["error"], serve_log))
            total = sum(counts.values())
            for mark in (args.warm_up, args.polls):
                if total >= mark and mark not in samples:
                    samples[mark] = (total, vm_status_kib(serve.pid, "VmRSS"), time.time() - t0)
                    print("bench: %d polls (asked %d) after %.1f s: VmRSS %.1f MiB (load %s)" %
                          (total, mark, samples[mark][2], samples[mark][1] / 1024, loadavg()))
            time.sleep(args.sample_interval)
        hwm = vm_status_kib(serve.pid, "VmHWM")
        cpu = cpu_seconds(serve.pid) - cpu0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    (n0, rss0, t_0), (n1, rss1, t_1) = samples[args.warm_up], samples[args.polls]
    return {
        "ironboot": args.ironboot, "label": args.label or os.path.basename(args.ironboot),
        "transport": args.transport, "interval": args.interval,
        "polls_at_first_sample": n0, "polls_at_last_sample": n1,
        "rss_first_kib": rss0, "rss_last_kib": rss1, "hwm_kib": hwm,
        "growth_per_poll_bytes": (rss1 - rss0) * 1024 / max(1, n1 - n0),
        "ratio": rss1 / rss0, "seconds": t_1, "serve_cpu_seconds": cpu,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": loadavg(),
    }


def main():
    default_bin = os.path.join(SOURCE_DIR, "build", "controller", "ironboot")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ironboot", default=os.environ.get("IRONBOOT_BINARY", default_bin))
    p.add_argument("--label", help="what to call the binary in the results row (default: its file name)")
    p.add_argument("--transport", choices=["git", "file"], default="git")
    p.add_argument("--interval", default="10ms", help="serve -interval")
    p.add_argument("--warm-up", type=int, default=100, help="polls before the first RSS sample")
    p.add_argument("--polls", type=int, default=1000, help="polls before the last RSS sample")
    p.add_argument("--sample-interval", type=float, default=0.1, help="seconds between /metrics reads")
    p.add_argument("--timeout", type=int, default=600, help="seconds for all polls")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (repository, state, logs)")
    p.add_argument("--json", help="also write the raw result here")
    args = p.parse_args()
    if not os.access(args.ironboot, os.X_OK):
        sys.exit("bench: %s is not an executable ironboot (pass --ironboot PATH)" % args.ironboot)
    if not 0 < args.warm_up < args.polls:
        sys.exit("bench: want 0 < --warm-up < --polls")

    tmp = tempfile.mkdtemp(prefix="ironboot-rss-git-")
    try:
        r = run(args, tmp)
    except BenchError as e:
        sys.exit("bench: %s (files in %s)" % (e, tmp) if args.keep else "bench: %s" % e)
    finally:
        if args.keep:
            print("bench: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| binary | transport | interval | polls | VmRSS at first sample | VmRSS at last sample | "
          "growth per poll | last / first | wall | serve CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("| %s | %s | %s | %d -> %d | %.1f MiB | %.1f MiB | %.1f KiB | %.2f | %.0f s | %.1f s |" %
          (r["label"], r["transport"], r["interval"], r["polls_at_first_sample"], r["polls_at_last_sample"],
           r["rss_first_kib"] / 1024, r["rss_last_kib"] / 1024, r["growth_per_poll_bytes"] / 1024, r["ratio"],
           r["seconds"], r["serve_cpu_seconds"]))
    print("(%s, load %s)" % (r["when"], r["load"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
