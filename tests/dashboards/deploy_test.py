#!/usr/bin/env python3
"""deploy/: the systemd unit (systemd-analyze verify and security), the Prometheus scrape
config (promtool check config), and the Kubernetes manifests (parse, and reference each
other's names, labels and ports consistently); every setting they pass to `ironboot
serve` is one its --help lists."""

import os
import re
import shutil
import tempfile
import unittest

import support
from support import DEPLOY, run

UNIT = os.path.join(DEPLOY, "systemd", "ironboot.service")


def serve_help():
    r = run([support.BINARY, "serve", "--help"])
    text = r.stdout + r.stderr
    assert "-repo" in text, text
    return text


def help_flags(text):
    return set(re.findall(r"^  -([a-z0-9-]+)", text, re.M))


def help_env(text):
    return set(re.findall(r"\[\$([A-Z0-9_]+)\]", text))


def unit_entries(path=UNIT):
    """[(section, key, value)] in file order (repeated keys kept)."""
    out, section = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.append((section, key, value))
    return out


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def unit_with_binary(self, text=None):
        """The unit with ExecStart pointing at the built binary (verify checks it exists)."""
        with open(UNIT, encoding="utf-8") as f:
            text = text or f.read()
        path = os.path.join(self.tmp, "ironboot.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("/usr/local/bin/ironboot", support.BINARY))
        return path

    def test_systemd_analyze_verify(self):
        """systemd-analyze verify accepts the unit with no warning (unknown keys and bad values are warnings)."""
        r = run(["systemd-analyze", "verify", self.unit_with_binary()])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_verify_would_catch_a_typo(self):
        """The same check fails on a misspelt hardening key, so the check above means something."""
        with open(UNIT, encoding="utf-8") as f:
            text = f.read().replace("ProtectSystem=strict", "ProtectSytem=strict")
        r = run(["systemd-analyze", "verify", self.unit_with_binary(text)])
        self.assertIn("Unknown key 'ProtectSytem'", r.stderr)

    def test_hardening(self):
        """Dedicated user, only CAP_NET_BIND_SERVICE, strict read-only system, state in StateDirectory, no new privileges."""
        entries = {(s, k): v for s, k, v in unit_entries()}
        want = {
            "User": "ironboot", "Group": "ironboot",
            "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
            "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "StateDirectory": "ironboot",
        }
        for key, value in want.items():
            self.assertEqual(entries.get(("Service", key)), value, key)
        env = dict(v.split("=", 1) for s, k, v in unit_entries() if k == "Environment")
        self.assertEqual(env["IRONBOOT_STATE_DIR"], "/var/lib/ironboot")
        with open(os.path.join(DEPLOY, "systemd", "ironboot.sysusers"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"(?m)^u ironboot ")

    def test_security_exposure(self):
        """systemd-analyze security rates the unit's exposure 2.0 or lower ("OK")."""
        r = run(["systemd-analyze", "security", "--offline=true", self.unit_with_binary()])
        m = re.search(r"Overall exposure level for ironboot.service: ([0-9.]+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_settings_are_serve_flags(self):
        """Every variable the unit and ironboot.env set (or show commented) is one `ironboot serve --help` lists."""
        known = help_env(serve_help())
        names = [v.split("=", 1)[0] for s, k, v in unit_entries() if k == "Environment"]
        with open(os.path.join(DEPLOY, "systemd", "ironboot.env"), encoding="utf-8") as f:
            names += re.findall(r"(?m)^#?([A-Z][A-Z0-9_]+)=", f.read())
        self.assertGreater(len(names), 8)
        self.assertEqual([n for n in names if n not in known], [])
        execs = [v for s, k, v in unit_entries() if k == "ExecStart"]
        self.assertEqual(execs, ["/usr/local/bin/ironboot serve"])

    def test_unit_environment_starts_the_server(self):
        """The unit's environment (addresses moved to loopback, state in a temp dir) starts `serve` and it answers /healthz."""
        env = dict(v.split("=", 1) for s, k, v in unit_entries() if k == "Environment")
        port, tftp = support.free_port(), support.free_port()
        env.update({"MATCHBOX_ADDRESS": f"127.0.0.1:{port}", "IRONBOOT_TFTP_ADDRESS": f"127.0.0.1:{tftp}",
                    "IRONBOOT_STATE_DIR": os.path.join(self.tmp, "state"),
                    "MATCHBOX_DATA_PATH": os.path.join(support.SOURCE_DIR, "examples", "matchbox"),
                    "PATH": os.environ.get("PATH", "/usr/bin")})
        import subprocess
        proc = subprocess.Popen([support.BINARY, "serve"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            ok = support.wait_for(lambda: support.http_get(port, "/healthz")[0] == 200
                                  or proc.poll() is not None, timeout=15)
            self.assertTrue(ok and proc.poll() is None, "serve exited")
            self.assertEqual(support.http_get(port, "/healthz")[0], 200)
        finally:
            proc.terminate()
            out = proc.communicate(timeout=15)[0]
        self.assertNotIn("unknown", out.lower())


class PrometheusScrapeConfigTest(unittest.TestCase):
    def test_promtool_check_config(self):
        """The scrape snippet with the rule file is a valid prometheus.yml (promtool check config) and its job is "ironboot"."""
        tmp = tempfile.mkdtemp()
        try:
            with open(os.path.join(DEPLOY, "prometheus", "scrape-config.yaml"), encoding="utf-8") as f:
                snippet = f.read()
            shutil.copy(os.path.join(support.DASHBOARDS, "prometheus-rules.yaml"), tmp)
            config = os.path.join(tmp, "prometheus.yml")
            with open(config, "w", encoding="utf-8") as f:
                f.write("rule_files:\n  - prometheus-rules.yaml\n" + snippet)
            r = run(["promtool", "check", "config", config])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("SUCCESS: 10 rules found", r.stdout)
        finally:
            shutil.rmtree(tmp)
        jobs = support.load_yaml_docs(os.path.join(DEPLOY, "prometheus", "scrape-config.yaml"))[0]
        self.assertEqual([j["job_name"] for j in jobs["scrape_configs"]], ["ironboot"])


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = {}
        directory = os.path.join(DEPLOY, "kubernetes")
        for name in sorted(os.listdir(directory)):
            if name.endswith(".yaml") and name != "kustomization.yaml":
                for doc in support.load_yaml_docs(os.path.join(directory, name)):
                    key = (doc["kind"], doc["metadata"]["name"])
                    assert key not in cls.objects, key
                    cls.objects[key] = doc

    def get(self, kind, name="ironboot"):
        self.assertIn((kind, name), self.objects)
        return self.objects[(kind, name)]

    def test_all_kinds_present_and_namespaced(self):
        """Deployment, Service, ServiceMonitor and PrometheusRule exist, all in the ironboot namespace, listed by the kustomization."""
        for kind in ("Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"):
            self.assertEqual(self.get(kind)["metadata"]["namespace"], "ironboot", kind)
        self.get("Namespace")
        kustomization = support.load_yaml_docs(os.path.join(DEPLOY, "kubernetes", "kustomization.yaml"))[0]
        for resource in kustomization["resources"]:
            self.assertTrue(os.path.exists(os.path.join(DEPLOY, "kubernetes", resource)), resource)
        listed = set(kustomization["resources"])
        present = {n for n in os.listdir(os.path.join(DEPLOY, "kubernetes"))
                   if n.endswith(".yaml") and n != "kustomization.yaml"}
        self.assertEqual(listed, present)

    def test_labels_and_ports_line_up(self):
        """Deployment selects its pods; the Service selects them and targets named container ports; the ServiceMonitor selects the Service and scrapes its http port."""
        dep = self.get("Deployment")
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        selector = dep["spec"]["selector"]["matchLabels"]
        self.assertLessEqual(selector.items(), pod_labels.items())
        container = dep["spec"]["template"]["spec"]["containers"][0]
        container_ports = {p["name"]: p for p in container["ports"]}

        svc = self.get("Service")
        self.assertLessEqual(svc["spec"]["selector"].items(), pod_labels.items())
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], container_ports, p)
            self.assertEqual(p["protocol"], container_ports[p["targetPort"]]["protocol"], p)
        svc_ports = {p["name"] for p in svc["spec"]["ports"]}

        mon = self.get("ServiceMonitor")
        self.assertLessEqual(mon["spec"]["selector"]["matchLabels"].items(), svc["metadata"]["labels"].items())
        self.assertIn(svc["metadata"]["namespace"], mon["spec"]["namespaceSelector"]["matchNames"])
        for ep in mon["spec"]["endpoints"]:
            self.assertIn(ep["port"], svc_ports)
            self.assertEqual(ep["path"], "/metrics")
        # The job label is the Service name; alerts and dashboards select job="ironboot".
        self.assertEqual(svc["metadata"]["name"], "ironboot")
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertIn(container[probe]["httpGet"]["port"], container_ports, probe)

    def test_container_settings_reach_serve(self):
        """The ConfigMap's variables are serve flags; its address and ports match the container's; secret and state paths are mounted."""
        known = help_env(serve_help())
        cm = self.get("ConfigMap")
        self.assertEqual([k for k in cm["data"] if k not in known], [])
        dep = self.get("Deployment")
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        self.assertEqual(container["args"], ["serve"])
        self.assertEqual([e["configMapRef"]["name"] for e in container["envFrom"]], ["ironboot"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertTrue(cm["data"]["MATCHBOX_ADDRESS"].endswith(f":{ports['http']}"))
        self.assertTrue(cm["data"]["IRONBOOT_TFTP_ADDRESS"].endswith(f":{ports['tftp']}"))
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(set(mounts), set(volumes))
        self.assertEqual(mounts["state"], cm["data"]["IRONBOOT_STATE_DIR"])
        claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
        self.get("PersistentVolumeClaim", claim)
        for key in ("IRONBOOT_WEBHOOK_SECRET_FILE", "IRONBOOT_AGE_IDENTITY"):
            self.assertEqual(os.path.dirname(cm["data"][key]), mounts["secrets"], key)
        sc = container["securityContext"]
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc["readOnlyRootFilesystem"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
