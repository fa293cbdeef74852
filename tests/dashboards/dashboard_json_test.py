#!/usr/bin/env python3
"""Structure of the Grafana dashboards: what makes them import anywhere and render
(Grafana itself is not in Debian; the queries are run by live_test.py)."""

import json
import os
import unittest

import support
from support import DASHBOARDS, DASHBOARD_FILES

DS = "${DS_PROMETHEUS}"


def load(name):
    with open(os.path.join(DASHBOARDS, name), encoding="utf-8") as f:
        return json.load(f)


class DashboardJsonTest(unittest.TestCase):
    def test_importable_anywhere(self):
        """Each dashboard is JSON with schemaVersion >= 36, a DS_PROMETHEUS input, and uid, title and tags set."""
        uids = set()
        for name in DASHBOARD_FILES:
            d = load(name)
            self.assertGreaterEqual(d["schemaVersion"], 36, name)
            inputs = {i["name"]: i for i in d["__inputs"]}
            self.assertEqual(inputs["DS_PROMETHEUS"]["type"], "datasource", name)
            self.assertEqual(inputs["DS_PROMETHEUS"]["pluginId"], "prometheus", name)
            self.assertRegex(d["uid"], r"^[a-z0-9-]{1,40}$", name)
            self.assertNotIn(d["uid"], uids, f"{name}: uid {d['uid']} used twice")
            uids.add(d["uid"])
            self.assertTrue(d["title"], name)
            self.assertIn("ironboot", d["tags"], name)
            self.assertNotIn("id", d, f"{name}: a dashboard id pins it to one Grafana")

    def test_every_panel_uses_the_datasource_variable(self):
        """Every panel and every query target (and the template variable) uses ${DS_PROMETHEUS}."""
        for name in DASHBOARD_FILES:
            d = load(name)
            for p in support.panels(d):
                if p["type"] == "row":
                    continue
                self.assertEqual(p.get("datasource"), {"type": "prometheus", "uid": DS},
                                 f"{name}: panel \"{p['title']}\"")
                self.assertTrue(p["targets"], f"{name}: panel \"{p['title']}\" has no query")
                for t in p["targets"]:
                    self.assertEqual(t.get("datasource", {}).get("uid"), DS,
                                     f"{name}: panel \"{p['title']}\" target {t['refId']}")
            for v in d["templating"]["list"]:
                self.assertEqual(v["datasource"]["uid"], DS, f"{name}: variable {v['name']}")

    def test_panel_ids_and_ref_ids_unique(self):
        """Panel ids are unique within a dashboard, and refIds within a panel."""
        for name in DASHBOARD_FILES:
            ids = [p["id"] for p in support.panels(load(name))]
            self.assertEqual(len(ids), len(set(ids)), f"{name}: duplicate panel ids")
            for p in support.panels(load(name)):
                refs = [t["refId"] for t in p.get("targets", [])]
                self.assertEqual(len(refs), len(set(refs)), f"{name}: panel \"{p['title']}\"")

    def test_layout_fits_the_grid(self):
        """Panels lie within Grafana's 24-column grid and do not overlap."""
        for name in DASHBOARD_FILES:
            cells = {}
            for p in support.panels(load(name)):
                g = p["gridPos"]
                self.assertLessEqual(g["x"] + g["w"], 24, f"{name}: panel \"{p['title']}\"")
                for x in range(g["x"], g["x"] + g["w"]):
                    for y in range(g["y"], g["y"] + g["h"]):
                        other = cells.setdefault((x, y), p["title"])
                        self.assertEqual(other, p["title"], f"{name}: panels overlap at {(x, y)}")

    def test_queries_select_the_ironboot_job_and_instance(self):
        """Every ironboot_* query selects job="ironboot" and the $instance variable, so one Grafana can show several servers."""
        for name in DASHBOARD_FILES:
            for title, expr in support.panel_queries(load(name)):
                self.assertIn('job="ironboot", instance=~"$instance"', expr, f"{name}: \"{title}\"")

    def test_issue_panels_present(self):
        """The panels issue 7 asks for exist under these titles."""
        want = {
            "fleet.json": ["Machines by phase", "Desired vs observed version", "Rollout progress",
                           "Current step", "Since last boot", "Failed machines"],
            "bootserver.json": ["Requests by handler and code", "Unmatched boot requests (unknown MACs)",
                                "Latency p50 / p95 / p99", "Asset throughput",
                                "Machine configs served and refused"],
            "gitops.json": ["Served revision", "Fetches by result", "Age of the last good fetch",
                            "Reconcile duration p50 / p95 / p99", "Reconcile errors",
                            "Manifest errors (newest revision)"],
        }
        for name, titles in want.items():
            have = {p["title"] for p in support.panels(load(name))}
            for t in titles:
                self.assertIn(t, have, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
