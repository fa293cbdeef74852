#!/usr/bin/env python3
"""Dashboards and alerts against the real thing: a real `ironboot serve --repo` (a local
git repository of examples/homelab moved to loopback, assets from file://), the simulated
Talos fleet (`ironboot fleet`) booting from it, a rolling upgrade pushed to git, HTTP and
TFTP traffic from strangers, all scraped every second by a real Prometheus (Debian's)
that loads dashboards/prometheus-rules.yaml. Every dashboard panel's query and every
alert expression runs through Prometheus's HTTP API; each ironboot_* name they use must
be declared by the server's /metrics during the run. Everything on 127.0.0.0/8.
"""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.parse

import support
from support import http_get, wait_for

# Names the dashboards and alerts use that the server does not declare yet, because the
# code exposing them is still being written. Keep this empty unless a name is listed with
# the issue that adds it; the check stays as strict for every other name.
NOT_YET_EXPOSED = set()

CP1_MAC = "00:23:24:e7:29:40"
CP2_MAC = "00:23:24:e7:29:41"
# examples/homelab's 10.0.4.x moved to loopback; a random /24 so concurrent runs do not
# share the simulated nodes' Talos API address:port.
MACHINE_NET = f"127.0.{random.randint(100, 250)}."
CP1_ADDRESS = MACHINE_NET + "101"
UNKNOWN_MAC = "52:54:00:aa:bb:cc"
METRIC_NAME = re.compile(r"\bironboot_[a-z0-9_]+")


def git(cwd, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.com")
    return support.run(["git", *args], cwd=cwd, env=env, check=True).stdout.strip()


def grafana_to_promql(expr):
    """A panel's query as Grafana sends it with 'All' instances and a 1m rate interval."""
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
            .replace('"$instance"', '".*"'))


def declared_names(metrics_text):
    """Every sample name /metrics declares by a # TYPE line (histograms with suffixes)."""
    names = set()
    for line in metrics_text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            names.add(parts[2])
            if parts[3] in ("histogram", "summary"):
                names.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
    return names


class Process:
    """A child in its own process group; stop() ends that group only."""

    def __init__(self, args, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def running(self):
        return self.proc.poll() is None

    def output(self):
        self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        if self.running():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class LiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ironboot-dashboards-")
        cls.processes = []
        cls.scrapes = []  # every /metrics text taken during the run
        try:
            cls.start_ironboot()
            cls.start_fleet()
            cls.send_traffic()
            cls.start_prometheus()
            cls.roll_out()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.processes:
            p.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write_release(cls, version):
        """A TalosRelease served from file://, with the simulated fleet's stand-in kernel."""
        assets = os.path.join(cls.tmp, "assets", version)
        os.makedirs(assets)
        sums = {}
        for name, data in (("vmlinuz", f"IRONBOOT-SIM-KERNEL talos={version}\n"),
                           ("initramfs.xz", f"initramfs {version}\n")):
            with open(os.path.join(assets, name), "w", encoding="utf-8") as f:
                f.write(data)
            sums[name] = hashlib.sha512(data.encode()).hexdigest()
        os.makedirs(os.path.join(cls.work, "releases"), exist_ok=True)
        with open(os.path.join(cls.work, "releases", f"{version}.yaml"), "w", encoding="utf-8") as f:
            f.write("apiVersion: ironboot.dev/v1alpha1\nkind: TalosRelease\nmetadata:\n"
                    f"  name: talos-{version}-amd64\nspec:\n  version: {version}\n  arch: amd64\n"
                    f"  kernel:\n    url: file://{assets}/vmlinuz\n    sha512: {sums['vmlinuz']}\n"
                    f"  initramfs:\n    url: file://{assets}/initramfs.xz\n"
                    f"    sha512: {sums['initramfs.xz']}\n")

    @classmethod
    def start_ironboot(cls):
        tmp = cls.tmp
        cls.port = support.free_port()
        cls.tftp_port = support.free_port()
        work = cls.work = os.path.join(tmp, "work")
        shutil.copytree(os.path.join(support.SOURCE_DIR, "examples", "homelab"), work)
        # The machines move to loopback (10.0.4.x -> 127.0.N.x, certSANs and subnet too)
        # where the simulated fleet runs their Talos API, and boot from this server.
        for root, _, files in os.walk(work):
            for name in files:
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                text = text.replace("10.0.4.", MACHINE_NET).replace(
                    "http://10.0.112.2:8080", f"http://127.0.0.1:{cls.port}")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
        # The example's release downloads from GitHub; ours from file://.
        cluster_path = os.path.join(work, "cluster.yaml")
        with open(cluster_path, encoding="utf-8") as f:
            cluster = f.read()
        with open(cluster_path, "w", encoding="utf-8") as f:
            f.write(cluster[:cluster.index("\n---\n") + 1])
        cls.write_release("v1.11.3")
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "homelab")
        cls.bare = os.path.join(tmp, "cluster.git")
        git(tmp, "clone", "-q", "--bare", work, cls.bare)
        cls.secrets = os.path.join(tmp, "secrets.yaml")
        support.run([support.BINARY, "secrets", "gen", "--out", cls.secrets], check=True)

        server = Process([support.BINARY, "serve", "-repo", cls.bare, "-ref", "main",
                          "-state-dir", os.path.join(tmp, "state"),
                          "-address", f"127.0.0.1:{cls.port}",
                          "-tftp-address", f"127.0.0.1:{cls.tftp_port}",
                          "-interval", "1s", "-config-rate", "0", "-secrets-file", cls.secrets],
                         os.path.join(tmp, "ironboot.log"))
        cls.processes.append(server)
        cls.server = server
        if not wait_for(lambda: http_get(cls.port, "/readyz")[0] == 200 or not server.running(),
                        timeout=30) or not server.running():
            raise AssertionError("ironboot serve did not become ready:\n" + server.output())

    @classmethod
    def fleet_status(cls):
        status, body = http_get(cls.port, "/status")
        try:
            return json.loads(body).get("fleet") or {}
        except ValueError:
            return {}

    @classmethod
    def start_fleet(cls):
        """The simulated Talos fleet (ironboot fleet): the three machines network-boot."""
        fleet = Process([support.BINARY, "fleet", "--boot-server", f"http://127.0.0.1:{cls.port}",
                         "--secrets", cls.secrets, "--repo", cls.work, "--reboot-delay", "500ms"],
                        os.path.join(cls.tmp, "fleet.log"))
        cls.processes.append(fleet)
        cls.fleet = fleet

        def running(version):
            machines = cls.fleet_status().get("machines") or []
            return len(machines) == 3 and all(
                m.get("ready") and m.get("observed") == version for m in machines)
        cls.fleet_running = running
        if not wait_for(lambda: running("v1.11.3"), timeout=30, step=0.2):
            raise AssertionError("the fleet did not come up on v1.11.3:\n" + json.dumps(cls.fleet_status())
                                 + "\n" + fleet.output())

    @classmethod
    def roll_out(cls):
        """Pushes Talos v1.11.4 and scrapes /metrics through the rolling upgrade until done."""
        cls.write_release("v1.11.4")
        cluster_path = os.path.join(cls.work, "cluster.yaml")
        with open(cluster_path, encoding="utf-8") as f:
            cluster = f.read()
        with open(cluster_path, "w", encoding="utf-8") as f:
            f.write(cluster.replace("talosVersion: v1.11.3", "talosVersion: v1.11.4"))
        git(cls.work, "add", "-A")
        git(cls.work, "commit", "-q", "-m", "talos v1.11.4")
        git(cls.work, "push", "-q", cls.bare, "HEAD:main")

        def done():
            cls.scrapes.append(http_get(cls.port, "/metrics")[1])
            return cls.fleet_running("v1.11.4")
        if not wait_for(done, timeout=60, step=0.2):
            raise AssertionError("the rollout to v1.11.4 did not finish:\n" + json.dumps(cls.fleet_status())
                                 + "\n" + cls.server.output())

    @classmethod
    def send_traffic(cls):
        """controlplane1's boot requests by hand from its own address, then strangers' requests."""
        port = cls.port

        # controlplane1 boots from its own address: chainload, script, kernel, initramfs, config.
        expect = [
            ("/boot.ipxe", 200),
            (f"/ipxe?mac={CP1_MAC}", 200),
        ]
        script = http_get(port, f"/ipxe?mac={CP1_MAC}", source=CP1_ADDRESS)[1]
        assets = sorted(set(re.findall(r"/assets/[^\s?]+", script)))
        if len(assets) != 2:
            raise AssertionError("want a kernel and an initramfs in the iPXE script:\n" + script)
        expect += [(a, 200) for a in assets] + [(f"/config?mac={CP1_MAC}", 200)]
        for target, want in expect:
            status, body = http_get(port, target, source=CP1_ADDRESS)
            if status != want:
                raise AssertionError(f"GET {target} from {CP1_ADDRESS}: {status}, want {want}: {body[:300]}")
        # Strangers: controlplane2's config from another address, an unknown MAC, a missing asset.
        for target, want in ((f"/config?mac={CP2_MAC}", 403), (f"/ipxe?mac={UNKNOWN_MAC}", 404),
                             ("/assets/talos/v9.9.9/amd64/vmlinuz", 404), ("/status", 200)):
            status, body = http_get(port, target)
            if status != want:
                raise AssertionError(f"GET {target}: {status}, want {want}: {body[:300]}")
        # One TFTP read of Debian's iPXE binary.
        tftp = support.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "10",
                            f"tftp://127.0.0.1:{cls.tftp_port}/undionly.kpxe"])
        if tftp.returncode != 0:
            raise AssertionError("TFTP read of undionly.kpxe failed: " + tftp.stderr)
        status, text = http_get(port, "/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}")
        cls.scrapes.append(text)

    @classmethod
    def start_prometheus(cls):
        cls.prom_port = support.free_port()
        config = os.path.join(cls.tmp, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {os.path.join(support.DASHBOARDS, 'prometheus-rules.yaml')}\n"
                    "scrape_configs:\n  - job_name: ironboot\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{cls.port}']\n")
        prom = Process(["prometheus", f"--config.file={config}",
                        f"--storage.tsdb.path={os.path.join(cls.tmp, 'tsdb')}",
                        f"--web.listen-address=127.0.0.1:{cls.prom_port}",
                        "--log.level=warn"], os.path.join(cls.tmp, "prometheus.log"))
        cls.processes.append(prom)
        cls.prometheus = prom

        # Two scrapes at least, so rate() and increase() have points.
        def scraped():
            r = cls.query('count_over_time(up{job="ironboot"}[1m])')
            return (r.get("status") == "success" and r["data"]["result"] and
                    float(r["data"]["result"][0]["value"][1]) >= 3)
        if not wait_for(scraped, timeout=30, step=0.2):
            raise AssertionError("Prometheus did not scrape ironboot 3 times:\n" + prom.output())

    @classmethod
    def query(cls, promql):
        url = f"/api/v1/query?query={urllib.parse.quote(promql)}"
        status, body = http_get(cls.prom_port, url)
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": f"HTTP {status}: {body[:200]}"}

    def all_queries(self):
        """(where, expr) of every dashboard panel query and every alert expression."""
        out = []
        for name in support.DASHBOARD_FILES:
            with open(os.path.join(support.DASHBOARDS, name), encoding="utf-8") as f:
                dashboard = json.load(f)
            for title, expr in support.panel_queries(dashboard):
                out.append((f"{name}: panel \"{title}\"", expr))
        for group in support.load_yaml_docs(
                os.path.join(support.DASHBOARDS, "prometheus-rules.yaml"))[0]["groups"]:
            for rule in group["rules"]:
                out.append((f"prometheus-rules.yaml: alert {rule['alert']}", rule["expr"]))
        return out

    def test_every_query_runs(self):
        """Every panel query and alert expression parses and evaluates in Prometheus."""
        queries = self.all_queries()
        self.assertGreater(len(queries), 40)
        # A parse error is reported as one, so a broken panel cannot pass unnoticed.
        bad = self.query(grafana_to_promql('sum(rate(ironboot_http_requests_total{instance=~"$instance"}[$__rate_interval])'))
        self.assertEqual((bad["status"], bad.get("errorType")), ("error", "bad_data"))
        failures = []
        for where, expr in queries:
            r = self.query(grafana_to_promql(expr))
            if r.get("status") != "success":
                failures.append(f"{where}: {r.get('errorType', '')} {r.get('error')}\n  {expr}")
        self.assertEqual(failures, [], "\n".join(failures))

    def test_every_metric_name_is_declared(self):
        """Each ironboot_* name in a panel or alert has a # TYPE line on the server's /metrics."""
        # Declared at some point of the run: some families only have samples (and so a
        # # TYPE line) while a rollout step runs.
        declared = set()
        for text in self.scrapes + [http_get(self.port, "/metrics")[1]]:
            declared |= declared_names(text)
        self.assertIn("ironboot_http_requests_total", declared)
        missing = {}
        for where, expr in self.all_queries():
            for name in METRIC_NAME.findall(expr):
                if name not in declared and name not in NOT_YET_EXPOSED:
                    users = missing.setdefault(name, [])
                    if where not in users:
                        users.append(where)
        self.assertEqual(missing, {}, "names the server does not expose:\n" + "\n".join(
            f"  {n}: used by {', '.join(w)}" for n, w in sorted(missing.items())))

    def test_traffic_shows_on_the_dashboards(self):
        """The panels the fleet, the rollout and the traffic feed return series (machines, rollout, requests, latency, boots, configs, GitOps)."""
        lit = {
            "fleet.json": ["Machines by phase", "Machines not ready", "Desired vs observed version",
                           "Since last boot", "Machine ready", "Rollout state", "Rollout progress",
                           "Current step: elapsed and timeout", "Node boot duration",
                           "Talos API requests"],
            "bootserver.json": ["Up", "Requests by handler and code", "Latency p50 / p95 / p99",
                                "Asset latency p50 / p95 / p99",
                                "Unmatched boot requests (unknown MACs)", "Boot selections by group",
                                "Machine configs served and refused", "Asset throughput",
                                "TFTP requests by result", "Groups and profiles served"],
            "gitops.json": ["Served revision", "Age of the last good fetch", "Fetches by result",
                            "Reconciles by reconciler and result",
                            "Reconcile duration p50 / p95 / p99", "Asset downloads"],
        }
        empty = []
        for name, titles in lit.items():
            with open(os.path.join(support.DASHBOARDS, name), encoding="utf-8") as f:
                dashboard = json.load(f)
            by_title = {}
            for title, expr in support.panel_queries(dashboard):
                by_title.setdefault(title, []).append(expr)
            for title in titles:
                self.assertIn(title, by_title, f"{name} has no panel \"{title}\"")
                if not any(self.query(grafana_to_promql(e)).get("data", {}).get("result")
                           for e in by_title[title]):
                    empty.append(f"{name}: \"{title}\"")
        self.assertEqual(empty, [], "panels with no data after live traffic")
        # The served revision is the commit Prometheus saw on /metrics.
        r = self.query('ironboot_source_revision_info{job="ironboot"} == 1')
        self.assertRegex(r["data"]["result"][0]["metric"]["revision"], r"^main@sha1:[0-9a-f]{40}$")

    def test_instance_variable_lists_the_server(self):
        """Each dashboard's $instance variable (label_values over up) lists the scraped server, as Grafana would ask Prometheus."""
        for name in support.DASHBOARD_FILES:
            with open(os.path.join(support.DASHBOARDS, name), encoding="utf-8") as f:
                variable = json.load(f)["templating"]["list"][0]
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            self.assertIsNotNone(m, name)
            status, body = http_get(self.prom_port, f"/api/v1/label/{m.group(2)}/values?"
                                    + urllib.parse.urlencode({"match[]": m.group(1)}))
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["data"], [f"127.0.0.1:{self.port}"], name)

    def test_alerts_loaded_and_fire_on_live_traffic(self):
        """Prometheus loads all 10 rules healthy; the unknown MAC and the refused /config fire their alerts, nothing else does."""
        def rules():
            status, body = http_get(self.prom_port, "/api/v1/rules?type=alert")
            if status != 200:
                return None
            rs = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
            return rs if rs and all(r.get("lastEvaluation", "").startswith("2") and
                                    not r["lastEvaluation"].startswith("0001") for r in rs) else None
        loaded = wait_for(rules, timeout=15, step=0.2)
        self.assertIsNotNone(loaded, self.prometheus.output())
        self.assertEqual(len(loaded), 10)
        unhealthy = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r["health"] != "ok"]
        self.assertEqual(unhealthy, [])

        def firing():
            status, body = http_get(self.prom_port, "/api/v1/alerts")
            alerts = json.loads(body)["data"]["alerts"] if status == 200 else []
            return sorted((a["labels"]["alertname"], a["labels"].get("handler", a["labels"].get("result", "")))
                          for a in alerts if a["state"] == "firing")
        want = [("IronbootConfigFetchRefused", "denied_address"), ("IronbootUnknownMacBooting", "ipxe")]
        got = wait_for(lambda: firing() == want and firing(), timeout=15, step=0.2)
        self.assertEqual(firing(), want)
        self.assertTrue(got)

    def test_promtool_check_metrics(self):
        """promtool check metrics finds no lint problem in a live /metrics scrape."""
        status, text = http_get(self.port, "/metrics")
        self.assertEqual(status, 200)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))



class MatchboxModeMetricsTest(unittest.TestCase):
    def test_promtool_check_metrics(self):
        """Quick-start style (Matchbox data dir, no repo): after boot traffic, promtool check metrics finds no lint problem."""
        tmp = tempfile.mkdtemp(prefix="ironboot-matchbox-")
        data = os.path.join(tmp, "data")
        shutil.copytree(os.path.join(support.SOURCE_DIR, "examples", "matchbox"), data)
        port = support.free_port()
        server = Process([support.BINARY, "serve", "-address", f"127.0.0.1:{port}",
                          "-data-path", data, "-assets-path", os.path.join(data, "assets")],
                         os.path.join(tmp, "ironboot.log"))
        try:
            self.assertTrue(wait_for(lambda: http_get(port, "/readyz")[0] == 200), server.output())
            for target, want in (("/boot.ipxe", 200), (f"/ipxe?mac={CP1_MAC}", 200),
                                 (f"/ipxe?mac={UNKNOWN_MAC}", 404),
                                 ("/assets/talos/1.11.3/amd64/vmlinuz", 200),
                                 ("/assets/missing", 404)):
                self.assertEqual(http_get(port, target)[0], want, target)
            status, text = http_get(port, "/metrics")
            self.assertEqual(status, 200)
            self.assertIn('ironboot_boot_unmatched_total{handler="ipxe"} 1', text)
            r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
