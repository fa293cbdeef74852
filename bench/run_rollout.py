#!/usr/bin/env python3
"""Rolling-upgrade benchmark (issue 6): `ironboot serve` drives a simulated
fleet (`ironboot fleet`) from Talos v1.11.3 to v1.12.0.

For each fleet size (the demo's 5 machines, and a large one: 3 control planes
plus workers, default 200 nodes in all, spec.upgrade.maxUnavailable.worker 20)
it prepares a demo dir (`ironboot demo --prepare-only`), adds the workers,
starts serve and fleet, waits for the fleet to be up on v1.11.3 with etcd
bootstrapped, commits the bump, samples the serve process's CPU time and RSS
until every machine runs v1.12.0 and reports:

- wall time of the rollout (commit to converged, as /status shows it);
- serve's CPU seconds over the rollout and that as % of one core;
- serve's peak RSS (VmHWM) and the largest sampled VmRSS;
- controller overhead per step: for each "machine=X step ... done" line of
  serve's log, the time to the next "machine=Y Reboot sent" line (the
  sequencer's own time between a node's gates passing and the next node's
  reboot); median and max.

It checks the fleet's own record (GET /fleet): every node was rebooted
exactly once and is up on v1.12.0, and no two control planes were ever down
at the same time. Any violation exits non-zero.

Stdlib only; builds nothing.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

FROM_VERSION = "v1.11.3"
TO_VERSION = "v1.12.0"


class BenchError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as r:
        return json.loads(r.read())


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_seconds(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """{tid: (thread name, seconds on a CPU)} of a process's live threads, from
    schedstat (nanoseconds; the tick-sampled utime/stime of single threads are
    too coarse for threads that run in short bursts)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[tid] = (name, int(f.read().split()[0]) / 1e9)
        except OSError:
            continue
    return out


def cpu_by_thread(before, after, total):
    """Serve's CPU over an interval by thread name; threads that came and went
    (gone from /proc by the end) are the rest of the process's total."""
    by_name = {}
    for tid, (name, secs) in after.items():
        by_name[name] = by_name.get(name, 0.0) + secs - before.get(tid, (name, 0.0))[1]
    by_name["(threads gone by the end)"] = max(0.0, total - sum(by_name.values()))
    return {k: v for k, v in by_name.items() if v > 0.005}


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


def thread_count(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def git(repo, *args):
    subprocess.run(["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost"] + list(args),
                   check=True, capture_output=True, text=True)


def move_addresses(repo, net):
    """The demo puts its machines on 127.0.4.0/24, as do other tests on this
    machine: move every address of the repo (cluster, patches, machines) to
    127.0.NET.0/23 so a concurrent demo or test cannot take our nodes' ports."""
    for dirpath, _, files in os.walk(repo):
        if ".git" in dirpath.split(os.sep):
            continue
        for name in files:
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                text = f.read()
            new = text.replace("127.0.4.0/24", "127.0.%d.0/23" % net).replace("127.0.4.", "127.0.%d." % net)
            new = re.sub(r"(address: 127\.0\.%d\.\d+)/24" % net, r"\1/23", new)
            if new != text:
                with open(path, "w") as f:
                    f.write(new)


def write_workers(repo, cluster_file, total_nodes, max_unavailable, net):
    """Adds workers until the repo has total_nodes machines (in 127.0.NET+1.x)
    and sets maxUnavailable.worker."""
    machines_dir = os.path.join(repo, "machines")
    existing = sorted(os.listdir(machines_dir))
    extra = total_nodes - len(existing)
    if extra > 250:
        raise BenchError("at most %d nodes fit 127.0.%d.0/23 here" % (len(existing) + 250, net))
    for i in range(1, extra + 1):
        with open(os.path.join(machines_dir, "worker-%03d.yaml" % i), "w") as f:
            f.write("apiVersion: ironboot.dev/v1alpha1\nkind: Machine\nmetadata:\n  name: worker-%03d\n"
                    "spec:\n  role: worker\n  mac: 02:1b:00:00:%02x:%02x\n  address: 127.0.%d.%d/23\n"
                    % (i, i >> 8, i & 0xFF, net + 1, i))
    path = os.path.join(repo, cluster_file)
    with open(path) as f:
        text = f.read()
    if "subnet: 127.0.%d.0/23" % net not in text or "  upgrade:\n" not in text:
        raise BenchError("%s: the demo's cluster no longer has 'subnet: 127.0.4.0/24' and 'upgrade:'" % path)
    text = text.replace("  upgrade:\n", "  upgrade:\n    maxUnavailable:\n      worker: %d\n" % max_unavailable, 1)
    with open(path, "w") as f:
        f.write(text)


def parse_log_time(line):
    # 2026-11-27T15:00:00.123+00:00 info rollout: ...
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def parse_rfc3339(text):
    text = text.replace("Z", "+00:00")
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)?$", text)
    if not m:
        raise BenchError("fleet record: cannot parse time %r" % text)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc if not m.group(3) else
        datetime.timezone(datetime.timedelta(hours=int(m.group(3)[:3]), minutes=int(m.group(3)[0] + m.group(3)[4:]))))
    return base.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


STEP_DONE = re.compile(r"rollout: machine=(\S+) step %s -> %s done" % (FROM_VERSION, TO_VERSION))
STEP_START = re.compile(r"rollout: machine=(\S+) step starts: %s -> %s" % (FROM_VERSION, TO_VERSION))
REBOOT_SENT = re.compile(r"rollout: machine=(\S+) Reboot sent")


def step_overheads(log_path):
    """Controller overhead per step from serve's log: for each "machine=X step
    ... done", the first "machine=Y step starts" after it and Y's "Reboot
    sent"; the overhead is X done -> Y Reboot sent (the last steps, after
    which nothing starts, have none). Returns (overheads, dones, reboots,
    any_next) where any_next is done -> the next Reboot sent of any machine."""
    events = []
    reboot_at = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            for kind, rx in (("done", STEP_DONE), ("start", STEP_START), ("reboot", REBOOT_SENT)):
                m = rx.search(line)
                if m:
                    events.append((kind, parse_log_time(line), m.group(1)))
                    if kind == "reboot":
                        reboot_at.setdefault(m.group(1), parse_log_time(line))
                    break
    overheads, any_next = [], []
    dones = sum(1 for e in events if e[0] == "done")
    reboots = sum(1 for e in events if e[0] == "reboot")
    for i, e in enumerate(events):
        if e[0] != "done":
            continue
        start = next((x for x in events[i + 1:] if x[0] == "start"), None)
        if start is not None and start[2] in reboot_at:
            overheads.append((reboot_at[start[2]] - e[1], e[2], start[2]))
        nxt = next((x for x in events[i + 1:] if x[0] == "reboot"), None)
        if nxt is not None:
            any_next.append(nxt[1] - e[1])
    return overheads, dones, reboots, any_next


def api_calls(base):
    """ironboot_talos_api_requests_total and the like: {series: value}."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(base + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    calls = {}
    for line in metrics.splitlines():
        m = re.match(r'(ironboot_\S+_total)\{([^}]*call=[^}]*)\} (\S+)', line)
        if m:
            calls["%s{%s}" % (m.group(1), m.group(2))] = float(m.group(3))
    return calls


def check_fleet(record, machines):
    """The fleet's own record: every node rebooted exactly once, up on the new
    version, never two control planes down at once."""
    problems = []
    nodes = record.get("nodes", [])
    if len(nodes) != machines:
        problems.append("fleet record has %d nodes, want %d" % (len(nodes), machines))
    cp_intervals = []
    now = time.time()
    for n in nodes:
        downs = n.get("down_intervals", [])
        if n.get("reboot_calls") != 1:
            problems.append("%s: %s Reboot calls, want exactly 1" % (n["name"], n.get("reboot_calls")))
        if len(downs) != 1:
            problems.append("%s: down %d times, want exactly 1 (%s)" %
                            (n["name"], len(downs), [d.get("reason") for d in downs]))
        if n.get("version") != TO_VERSION:
            problems.append("%s: runs %s, want %s" % (n["name"], n.get("version"), TO_VERSION))
        if n.get("role") == "controlplane":
            for d in downs:
                up = parse_rfc3339(d["up_at"]) if d.get("up_at") else now
                cp_intervals.append((parse_rfc3339(d["down_at"]), up, n["name"]))
    cp_intervals.sort()
    for a, b in zip(cp_intervals, cp_intervals[1:]):
        if b[0] < a[1]:
            problems.append("control planes %s and %s down at once (%s overlaps %s)" % (a[2], b[2], a, b))
    max_cp_down = max((b - a for a, b, _ in cp_intervals), default=0.0)
    return problems, max_cp_down


def run_case(args, tmp, name, total_nodes, max_unavailable, net):
    case_dir = os.path.join(tmp, name)
    port, fleet_port = free_port(), free_port()
    subprocess.run([args.ironboot, "demo", "--prepare-only", "--dir", case_dir, "--address", "127.0.0.1:%d" % port,
                    "--fleet-status-address", "127.0.0.1:%d" % fleet_port], check=True, capture_output=True)
    with open(os.path.join(case_dir, "commands.json")) as f:
        commands = json.load(f)
    repo, cluster_file = commands["repo"], commands["cluster_file"]
    machines = commands["machines"]
    move_addresses(repo, net)
    if total_nodes > machines:
        write_workers(repo, cluster_file, total_nodes, max_unavailable, net)
        machines = total_nodes
    v = subprocess.run([args.ironboot, "validate", repo, "--secrets", commands["secrets"]],
                       capture_output=True, text=True)
    if v.returncode != 0:
        raise BenchError("%s: ironboot validate failed:\n%s%s" % (name, v.stdout, v.stderr))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bench: 127.0.%d.0/23, %d machines, maxUnavailable.worker %d" %
        (net, machines, max_unavailable))

    serve_args = list(commands["serve"])
    if args.talos_poll_interval:
        serve_args[serve_args.index("-talos-poll-interval") + 1] = args.talos_poll_interval
    if args.upgrade_interval:
        serve_args[serve_args.index("-upgrade-interval") + 1] = args.upgrade_interval
    result_flags = {"talos_poll_interval": serve_args[serve_args.index("-talos-poll-interval") + 1],
                    "upgrade_interval": serve_args[serve_args.index("-upgrade-interval") + 1]}
    base = "http://127.0.0.1:%d" % port
    serve_log = os.path.join(case_dir, "serve.log")
    fleet_log = os.path.join(case_dir, "fleet.log")
    procs = []
    result = {"case": name, "machines": machines, "max_unavailable_worker": max_unavailable,
              "load_start": loadavg(), **result_flags}
    try:
        serve = subprocess.Popen([args.ironboot] + serve_args, stdin=subprocess.DEVNULL,
                                 stdout=open(serve_log, "w"), stderr=subprocess.STDOUT)
        procs.append(serve)
        deadline = time.time() + 60
        while True:
            if serve.poll() is not None:
                raise BenchError("%s: ironboot serve exited %d; see %s" % (name, serve.returncode, serve_log))
            try:
                get_json(base + "/status", timeout=2)
                break
            except Exception:
                if time.time() > deadline:
                    raise BenchError("%s: serve did not answer /status in 60 s" % name)
                time.sleep(0.1)
        fleet = subprocess.Popen([args.ironboot] + commands["fleet"], stdin=subprocess.DEVNULL,
                                 stdout=open(fleet_log, "w"), stderr=subprocess.STDOUT)
        procs.append(fleet)

        def fleet_status():
            for p, what, log in ((serve, "serve", serve_log), (fleet, "fleet", fleet_log)):
                if p.poll() is not None:
                    raise BenchError("%s: ironboot %s exited %d; see %s" % (name, what, p.returncode, log))
            try:
                return get_json(base + "/status", timeout=5).get("fleet") or {}
            except Exception:
                return {}

        def count(f, version):
            return sum(1 for m in f.get("machines", []) if m.get("observed") == version and m.get("ready"))

        # Phase 1: boot.
        t0 = time.time()
        deadline = t0 + args.timeout
        while True:
            f = fleet_status()
            if count(f, FROM_VERSION) == machines and (f.get("bootstrap") or {}).get("done"):
                break
            if time.time() > deadline:
                raise BenchError("%s: fleet not up within %ds (%d/%d ready); see %s" %
                                 (name, args.timeout, count(f, FROM_VERSION), machines, case_dir))
            time.sleep(0.25)
        result["boot_s"] = time.time() - t0
        # Idle controller for a few seconds: the steady polling cost.
        cpu_idle0, t_idle0 = cpu_seconds(serve.pid), time.time()
        time.sleep(args.idle_seconds)
        result["idle_cpu_pct"] = 100 * (cpu_seconds(serve.pid) - cpu_idle0) / (time.time() - t_idle0)
        print("bench: %s: %d machines up on %s in %.1f s; idle serve CPU %.1f%% of a core (load %s)" %
              (name, machines, FROM_VERSION, result["boot_s"], result["idle_cpu_pct"], loadavg()), flush=True)

        # Phase 2: the bump.
        path = os.path.join(repo, cluster_file)
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(text.replace("talosVersion: " + FROM_VERSION, "talosVersion: " + TO_VERSION, 1))
        perf = None
        if args.perf:
            callgraph = ["--call-graph", "dwarf,32768", "-F", "199"] if args.perf_dwarf else ["-F", "499", "-g"]
            perf = subprocess.Popen(["perf", "record", *callgraph, "-o", args.perf, "-p", str(serve.pid)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=open(os.path.join(case_dir, "perf.log"), "w"))
            procs.append(perf)
            time.sleep(1)
        calls_before = api_calls(base)
        cpu0 = cpu_seconds(serve.pid)
        threads0 = thread_cpu(serve.pid)
        t0 = time.time()
        git(repo, "commit", "-qam", "talos " + TO_VERSION)
        max_rss = 0
        max_threads = 0
        samples = []
        last_print = 0
        while True:
            f = fleet_status()
            rss = vm_status(serve.pid, "VmRSS") or 0
            max_rss = max(max_rss, rss)
            max_threads = max(max_threads, thread_count(serve.pid))
            now = time.time()
            done = count(f, TO_VERSION)
            samples.append((now - t0, cpu_seconds(serve.pid) - cpu0, rss, done))
            rollout = f.get("rollout") or {}
            if rollout.get("state") == "halted":
                raise BenchError("%s: rollout halted: %s" % (name, rollout.get("halted_reason")))
            if done == machines and not rollout.get("steps"):
                break
            if now > deadline + args.timeout:
                raise BenchError("%s: not converged within %ds (%d/%d); see %s" %
                                 (name, args.timeout, done, machines, case_dir))
            if now - last_print > 10:
                print("bench: %s: %6.1f s  %3d/%d on %s  serve CPU %.1f s  RSS %.1f MiB  (load %s)" %
                      (name, now - t0, done, machines, TO_VERSION, samples[-1][1], rss / 1024, loadavg()),
                      flush=True)
                last_print = now
            time.sleep(args.sample_interval)
        wall = time.time() - t0
        cpu = cpu_seconds(serve.pid) - cpu0
        result["cpu_by_thread"] = cpu_by_thread(threads0, thread_cpu(serve.pid), cpu)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        result.update({
            "wall_s": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall,
            "hwm_kib": vm_status(serve.pid, "VmHWM"), "max_rss_kib": max_rss, "max_threads": max_threads,
            "completed_steps": (f.get("rollout") or {}).get("completed_steps"),
            "load_end": loadavg(), "samples": samples,
        })
        # What this script's own GET /status polls cost serve (it answers with
        # every machine): measured now, subtracted below as "net" CPU.
        time.sleep(0.5)
        c0 = cpu_seconds(serve.pid)
        for _ in range(40):
            get_json(base + "/status")
        result["status_cpu_ms"] = 1000 * (cpu_seconds(serve.pid) - c0) / 40
        result["status_polls"] = len(samples)
        result["net_cpu_s"] = max(0.0, cpu - len(samples) * result["status_cpu_ms"] / 1000)
        result["net_cpu_pct"] = 100 * result["net_cpu_s"] / wall
        record = get_json("http://127.0.0.1:%d/fleet" % fleet_port)
        problems, max_cp_down = check_fleet(record, machines)
        result["max_cp_down_s"] = max_cp_down
        overheads, dones, reboots, any_next = step_overheads(serve_log)
        result["any_next_median_s"] = statistics.median(any_next) if any_next else None
        result["any_next_max_s"] = max(any_next) if any_next else None
        if dones != machines or reboots != machines:
            problems.append("serve log: %d steps done, %d Reboot sent lines, want %d each" %
                            (dones, reboots, machines))
        values = [o[0] for o in overheads]
        result["overheads"] = overheads
        result["overhead_median_s"] = statistics.median(values) if values else None
        result["overhead_max_s"] = max(values) if values else None
        result["overhead_max_pair"] = max(overheads)[1:] if overheads else None
        # Talos API calls the controller made during the rollout.
        after = api_calls(base)
        result["api_calls"] = {k: v - calls_before.get(k, 0) for k, v in after.items()}
        result["problems"] = problems
        print("bench: %s: converged in %.1f s; serve CPU %.2f s = %.1f%% of a core; VmHWM %.1f MiB; "
              "step overhead median %.3f s max %.3f s over %d steps (load %s)" %
              (name, wall, cpu, result["cpu_pct"], (result["hwm_kib"] or 0) / 1024,
               result["overhead_median_s"] or -1, result["overhead_max_s"] or -1, len(values), loadavg()),
              flush=True)
        return result
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_bin = os.path.join(os.path.dirname(here), "build", "controller", "ironboot")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ironboot", default=os.environ.get("IRONBOOT_BINARY", default_bin))
    p.add_argument("--nodes", type=int, default=200, help="nodes in the large case (3 control planes + workers)")
    p.add_argument("--max-unavailable", type=int, default=20, help="maxUnavailable.worker of the large case")
    p.add_argument("--only", choices=["demo", "large"], help="run one case only")
    p.add_argument("--timeout", type=int, default=240, help="seconds for the boot, and again for the rollout")
    p.add_argument("--idle-seconds", type=float, default=5, help="measure idle serve CPU this long before the bump")
    p.add_argument("--sample-interval", type=float, default=0.5)
    p.add_argument("--net", type=int, default=60,
                   help="even N: the demo case uses 127.0.N.0/23, the large one 127.0.N+2.0/23 (not the demo's 127.0.4.x)")
    p.add_argument("--perf", help="also run `perf record -g` on serve over the rollout, into this file")
    p.add_argument("--perf-dwarf", action="store_true",
                   help="with --perf: unwind with DWARF at 199 Hz (whole stacks through libraries built "
                        "without frame pointers; larger files)")
    p.add_argument("--talos-poll-interval", help="replace the demo's serve -talos-poll-interval (2s) with this, "
                   "e.g. 10s (serve's default)")
    p.add_argument("--upgrade-interval", help="replace the demo's serve -upgrade-interval (500ms) with this, "
                   "e.g. 1s (serve's default)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, repos)")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()
    if not os.access(args.ironboot, os.X_OK):
        sys.exit("bench: %s is not an executable ironboot (pass --ironboot PATH)" % args.ironboot)

    tmp = tempfile.mkdtemp(prefix="ironboot-rollout-")
    results = []
    failed = False
    try:
        started = datetime.datetime.now(datetime.timezone.utc)
        cases = [("demo-5", 5, 1, args.net), ("large-%d" % args.nodes, args.nodes, args.max_unavailable, args.net + 2)]
        if args.only == "demo":
            cases = cases[:1]
        elif args.only == "large":
            cases = cases[1:]
        for name, nodes, mu, net in cases:
            results.append(run_case(args, tmp, name, nodes, mu, net))
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        args.keep = True
        failed = True
    finally:
        if args.keep:
            print("bench: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        return 1

    print()
    print("date %s UTC, machine: nproc=%d, CPU %s, binary %s" %
          (started.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), cpu_model(), args.ironboot))
    print()
    print("| case | machines | maxUnavailable.worker | talos poll | boot | rollout wall | serve CPU | % of one core "
          "| net of /status polls | idle CPU % | VmHWM | step overhead median / max | load (start / end) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %d | %d | %s | %.1f s | %.1f s | %.2f s | %.1f %% | %.1f %% | %.1f %% | %.1f MiB | %.3f / %.3f s "
              "| %s / %s |" %
              (r["case"], r["machines"], r["max_unavailable_worker"], r["talos_poll_interval"], r["boot_s"],
               r["wall_s"], r["cpu_s"], r["cpu_pct"], r["net_cpu_pct"], r["idle_cpu_pct"],
               (r["hwm_kib"] or 0) / 1024, r["overhead_median_s"], r["overhead_max_s"], r["load_start"],
               r["load_end"]))
    print()
    for r in results:
        print("%s: slowest step->reboot %s -> %s; step done -> next Reboot of any machine median %.3f s max "
              "%.3f s; max control-plane down %.1f s; serve threads max %d" %
              (r["case"], r["overhead_max_pair"][0] if r["overhead_max_pair"] else "-",
               r["overhead_max_pair"][1] if r["overhead_max_pair"] else "-", r["any_next_median_s"] or -1,
               r["any_next_max_s"] or -1, r["max_cp_down_s"], r["max_threads"]))
        print("  GET /status costs serve %.2f ms CPU; this script made %d of them during the rollout" %
              (r["status_cpu_ms"], r["status_polls"]))
        print("  serve CPU by thread: " + ", ".join(
            "%s %.2f s" % (k, v) for k, v in sorted(r["cpu_by_thread"].items(), key=lambda kv: -kv[1])))
        for k, v in sorted(r.get("api_calls", {}).items()):
            print("  during the rollout: %s %d (%.1f/s)" % (k, v, v / r["wall_s"]))
    print()
    print("| goal | figure | verdict |")
    print("|---|---|---|")
    bad = False
    for r in results:
        ok = r["overhead_max_s"] is not None and r["overhead_max_s"] < 1.0
        print("| %s: controller overhead per step < 1 s | median %.3f s, max %.3f s | %s |" %
              (r["case"], r["overhead_median_s"], r["overhead_max_s"], "met" if ok else "**missed**"))
        if r["case"].startswith("large"):
            ok = r["cpu_pct"] < 5.0
            print("| %s converges, serve CPU < 5 %% of one core | %.1f %% (%.1f s CPU over %.1f s) | %s |" %
                  (r["case"], r["cpu_pct"], r["cpu_s"], r["wall_s"], "met" if ok else "**missed**"))
    for r in results:
        for prob in r["problems"]:
            print("bench: FLEET CHECK FAILED %s: %s" % (r["case"], prob), file=sys.stderr)
            bad = True
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started.isoformat(), "results": results}, f, indent=1)
    if bad:
        return 1
    print("fleet checks passed: every node rebooted exactly once, never two control planes down at once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
