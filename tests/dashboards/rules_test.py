#!/usr/bin/env python3
"""The alert rules: generated files up to date, promtool check/test rules on both
outputs, every alert with its labels, annotations, runbook entry and test cases."""

import os
import re
import shutil
import tempfile
import unittest

import support
from support import DASHBOARDS, DEPLOY, run

EXPECTED_ALERTS = {
    "IronbootBootServerDown", "IronbootReconcileFailing", "IronbootSourceStale",
    "IronbootRevisionRejected", "IronbootRolloutHalted", "IronbootRolloutStepTimeout",
    "IronbootMachineNotReady", "IronbootUnknownMacBooting", "IronbootConfigFetchRefused",
    "IronbootAssetVerifyFailed",
}


def rules(path=os.path.join(DASHBOARDS, "prometheus-rules.yaml")):
    return [r for g in support.load_yaml_docs(path)[0]["groups"] for r in g["rules"]]


class RulesTest(unittest.TestCase):
    def test_generated_files_are_up_to_date(self):
        """The checked-in rules, rule tests, PrometheusRule and dashboards equal generate.py's output."""
        r = run(["python3", os.path.join(DASHBOARDS, "generate.py"), "--check"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_reports_a_stale_file(self):
        """generate.py --check names a file that was edited by hand and exits 1."""
        root = tempfile.mkdtemp()
        try:
            for rel in ("dashboards", "deploy/kubernetes"):
                shutil.copytree(os.path.join(support.SOURCE_DIR, rel), os.path.join(root, rel))
            with open(os.path.join(root, "dashboards", "prometheus-rules.yaml"), "a") as f:
                f.write("# hand edit\n")
            r = run(["python3", os.path.join(DASHBOARDS, "generate.py"), "--check", "--root", root])
            self.assertEqual(r.returncode, 1)
            self.assertIn("out of date (run python3 dashboards/generate.py): "
                          "dashboards/prometheus-rules.yaml", r.stderr)
        finally:
            shutil.rmtree(root)

    def test_promtool_check_rules(self):
        """promtool check rules accepts the plain rule file with all 10 alerts."""
        r = run(["promtool", "check", "rules", os.path.join(DASHBOARDS, "prometheus-rules.yaml")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 10 rules found", r.stdout)

    def test_promtool_check_prometheusrule_spec(self):
        """The PrometheusRule's spec passes promtool check rules and equals the plain rule file."""
        docs = support.load_yaml_docs(os.path.join(DEPLOY, "kubernetes", "prometheusrule.yaml"))
        self.assertEqual(len(docs), 1)
        self.assertEqual((docs[0]["apiVersion"], docs[0]["kind"]),
                         ("monitoring.coreos.com/v1", "PrometheusRule"))
        plain = support.load_yaml_docs(os.path.join(DASHBOARDS, "prometheus-rules.yaml"))[0]
        self.assertEqual(docs[0]["spec"], plain)
        import yaml
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump(docs[0]["spec"], f)
            f.flush()
            r = run(["promtool", "check", "rules", f.name])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_promtool_test_rules(self):
        """promtool test rules passes: every alert fires on its failing series and stays quiet otherwise."""
        r = run(["promtool", "test", "rules", "alerts_test.yaml"], cwd=DASHBOARDS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_rule_tests_detect_a_broken_rule(self):
        """With one alert's threshold broken, promtool test rules fails and names that alert."""
        tmp = tempfile.mkdtemp()
        try:
            shutil.copy(os.path.join(DASHBOARDS, "alerts_test.yaml"), tmp)
            with open(os.path.join(DASHBOARDS, "prometheus-rules.yaml")) as f:
                text = f.read()
            self.assertIn("ironboot_machine_ready == 0", text)
            with open(os.path.join(tmp, "prometheus-rules.yaml"), "w") as f:
                f.write(text.replace("ironboot_machine_ready == 0", "ironboot_machine_ready == 2"))
            r = run(["promtool", "test", "rules", "alerts_test.yaml"], cwd=tmp)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("alertname: IronbootMachineNotReady", r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp)

    def test_every_alert_fires_and_stays_quiet_in_the_rule_tests(self):
        """Each alert has a promtool case expecting it to fire and one expecting silence."""
        tests = support.load_yaml_docs(os.path.join(DASHBOARDS, "alerts_test.yaml"))[0]["tests"]
        fires, quiet = set(), set()
        for t in tests:
            for case in t["alert_rule_test"]:
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
        self.assertEqual(fires, EXPECTED_ALERTS)
        self.assertEqual(quiet, EXPECTED_ALERTS)

    def test_every_alert_is_documented(self):
        """Each alert has severity, summary, description and a runbook_url whose anchor is a RUNBOOK.md entry with meaning, checks and fix."""
        with open(os.path.join(DASHBOARDS, "RUNBOOK.md"), encoding="utf-8") as f:
            runbook = f.read()
        sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", runbook, re.S | re.M))
        seen = set()
        for rule in rules():
            name = rule["alert"]
            seen.add(name)
            self.assertIn(rule["labels"]["severity"], ("critical", "warning"), name)
            ann = rule["annotations"]
            self.assertTrue(ann["summary"] and ann["description"], name)
            self.assertTrue(ann["runbook_url"].endswith("/dashboards/RUNBOOK.md#" + name.lower()),
                            f"{name}: {ann['runbook_url']}")
            self.assertIn(name, sections, f"RUNBOOK.md has no '## {name}'")
            body = sections[name]
            for part in ("**Meaning.**", "**First three checks.**", "**Fix.**"):
                self.assertIn(part, body, f"RUNBOOK.md {name}")
            self.assertRegex(body, r"\n1\. .*\n(.*\n)*2\. .*\n(.*\n)*3\. ", f"RUNBOOK.md {name}: three checks")
        self.assertEqual(seen, EXPECTED_ALERTS)
        self.assertEqual(set(sections), EXPECTED_ALERTS, "RUNBOOK.md entries without an alert")


if __name__ == "__main__":
    unittest.main(verbosity=2)
