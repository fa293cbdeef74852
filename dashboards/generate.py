#!/usr/bin/env python3
"""The one source of ironboot's alerts and Grafana dashboards.

Writes, from the definitions below:
  dashboards/prometheus-rules.yaml        plain Prometheus rule file (rule_files:)
  dashboards/alerts_test.yaml             promtool unit tests: each alert fires and stays quiet
  deploy/kubernetes/prometheusrule.yaml   the same rules as a prometheus-operator PrometheusRule
  dashboards/fleet.json, bootserver.json, gitops.json   Grafana dashboards (import with a
                                          Prometheus datasource chosen for ${DS_PROMETHEUS})

Usage:
  python3 dashboards/generate.py            rewrite the files above
  python3 dashboards/generate.py --check    exit 1 (naming the files) if any differs from them
  --runbook-base URL                        where RUNBOOK.md is published (forks change it)

Only the Python standard library: the YAML is emitted here, in one fixed layout.
Every metric used below is one the server declares (tests/dashboards checks it against a
live /metrics, through a real Prometheus).
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNBOOK_BASE = "https://github.com/ironboot/ironboot/blob/main/dashboards/RUNBOOK.md"

# The scrape job every rule and panel expects: deploy/prometheus/scrape-config.yaml and
# the Kubernetes Service (ServiceMonitor job label = Service name) both use it.
JOB = "ironboot"

# `serve -interval` default: the "Age of the last good fetch" panel turns red at 3 polls.
# (The alert compares with the server's own ironboot_source_poll_interval_seconds.)
POLL_INTERVAL_SECONDS = 30

# ---------------------------------------------------------------------------------------
# Alerts. Each: name, expr, for, severity, summary, description (Go templates over $labels
# only, so the generated promtool tests can expand them), and promtool test cases:
#   fire:  input series (interval 1m) and the labels of the alert(s) expected at `at`
#   quiet: input series under which the alert must not fire at `at`
# ---------------------------------------------------------------------------------------

REFUSED = "denied_address|denied_token|unknown_mac|rate_limited|denied_tls"


def new_or_increased(metric, matchers, label):
    """Counted at least once in the last 10 minutes, per `label`.

    The server creates a counter's labelled series at its first increment, so a series
    that appears at 1 has no increase() in Prometheus: the second operand catches
    non-zero series with no sample 10 minutes ago. (On a Prometheus with less than 10 minutes
    of data, every such series counts as new.)
    """
    sel = f"{metric}{{{matchers}}}" if matchers else metric
    by = f"sum by (job, instance, {label})"
    return (f"{by} (increase({sel}[10m])) > 0\n"
            f"or\n"
            f"{by} ({sel} > 0 unless {sel} offset 10m)")

ALERTS = [
    {
        "name": "IronbootBootServerDown",
        "expr": f'up{{job="{JOB}"}} == 0 or absent(up{{job="{JOB}"}})',
        "for": "2m",
        "severity": "critical",
        "summary": "ironboot boot server is down or not scraped",
        "description": (
            "Prometheus cannot scrape ironboot{{ if $labels.instance }} at {{ $labels.instance }}"
            "{{ end }} (job {{ $labels.job }}) for 2 minutes: machines that reboot now cannot "
            "network-boot, and no alert below can fire."),
        "tests": {
            "fire": [{
                "series": {f'up{{job="{JOB}",instance="boot1:8080"}}': "1 0x10"},
                "at": "5m",
                "alerts": [{"job": JOB, "instance": "boot1:8080"}],
            }, {
                "series": {'up{job="node",instance="n1:9100"}': "1x10"},
                "at": "5m",
                "alerts": [{"job": JOB}],
            }],
            "quiet": [{
                "series": {f'up{{job="{JOB}",instance="boot1:8080"}}': "1x10"},
                "at": "5m",
            }, {
                # One failed scrape is not an outage.
                "series": {f'up{{job="{JOB}",instance="boot1:8080"}}': "1 1 1 0 1 1 1"},
                "at": "5m",
            }],
        },
    },
    {
        "name": "IronbootReconcileFailing",
        # Errors and not one success for 10 minutes. A single rejected commit
        # (render error, then nothing new to render) is IronbootRevisionRejected instead.
        "expr": ("sum by (job, instance, reconciler) "
                 "(rate(ironboot_reconcile_total{result=\"error\"}[5m])) > 0\n"
                 "unless on (job, instance, reconciler)\n"
                 "sum by (job, instance, reconciler) "
                 "(rate(ironboot_reconcile_total{result=\"ok\"}[5m])) > 0"),
        "for": "10m",
        "severity": "warning",
        "summary": "ironboot reconciler {{ $labels.reconciler }} has failed for 10 minutes",
        "description": (
            "Every {{ $labels.reconciler }} reconcile on {{ $labels.instance }} failed in the "
            "last 10 minutes and none succeeded. The boot server keeps serving the last good "
            "plan; new commits are not applied."),
        "tests": {
            "fire": [{
                "series": {
                    'ironboot_reconcile_total{job="ironboot",instance="boot1:8080",reconciler="source",result="ok"}': "5x30",
                    'ironboot_reconcile_total{job="ironboot",instance="boot1:8080",reconciler="source",result="error"}': "0+2x30",
                },
                "at": "20m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "reconciler": "source"}],
            }],
            "quiet": [{
                # Failing on and off: some fetches succeed.
                "series": {
                    'ironboot_reconcile_total{job="ironboot",instance="boot1:8080",reconciler="source",result="ok"}': "0+1x30",
                    'ironboot_reconcile_total{job="ironboot",instance="boot1:8080",reconciler="source",result="error"}': "0+1x30",
                },
                "at": "20m",
            }, {
                # One rejected commit: one render error, then nothing.
                "series": {
                    'ironboot_reconcile_total{job="ironboot",instance="boot1:8080",reconciler="render",result="error"}': "0 1x30",
                },
                "at": "20m",
            }],
        },
    },
    {
        "name": "IronbootSourceStale",
        "expr": ("time() - ironboot_source_last_success_timestamp_seconds\n"
                 "> 3 * ironboot_source_poll_interval_seconds"),
        # The timestamp is 0 until the first fetch of a fresh start completes.
        "for": "1m",
        "severity": "warning",
        "summary": "ironboot has not fetched its cluster repository for 3 poll intervals",
        "description": (
            "No successful fetch of the cluster repository by {{ $labels.instance }} for more "
            "than 3 poll intervals (serve -interval). Commits pushed since are not served."),
        "tests": {
            "fire": [{
                # Polling every 30 s; the last success at t=60 s, then fetches fail.
                "series": {
                    'ironboot_source_last_success_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0 60x10",
                    'ironboot_source_poll_interval_seconds{job="ironboot",instance="boot1:8080"}': "30x10",
                },
                "at": "5m",
                "alerts": [{"job": JOB, "instance": "boot1:8080"}],
            }],
            "quiet": [{
                "series": {
                    'ironboot_source_last_success_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0+60x10",
                    'ironboot_source_poll_interval_seconds{job="ironboot",instance="boot1:8080"}': "30x10",
                },
                "at": "5m",
            }, {
                # Polling every 5 minutes: 4 minutes without a fetch is normal.
                "series": {
                    'ironboot_source_last_success_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0 60x10",
                    'ironboot_source_poll_interval_seconds{job="ironboot",instance="boot1:8080"}': "300x10",
                },
                "at": "5m",
            }, {
                # A fresh start: 0 for one scrape, then the first fetch.
                "series": {
                    'ironboot_source_last_success_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "_x5 0 360+60x5",
                    'ironboot_source_poll_interval_seconds{job="ironboot",instance="boot1:8080"}': "30x10",
                },
                "at": "5m",
            }],
        },
    },
    {
        "name": "IronbootRevisionRejected",
        "expr": "ironboot_manifest_errors > 0",
        "for": "0m",
        "severity": "warning",
        "summary": "the newest commit of the cluster repository was rejected",
        "description": (
            "{{ $labels.instance }} rejected the newest revision of the cluster repository "
            "(manifest, schema or secrets errors) and still serves the previous one. "
            "`ironboot status` or /status lists the errors with file and line."),
        "tests": {
            "fire": [{
                "series": {'ironboot_manifest_errors{job="ironboot",instance="boot1:8080"}': "0 0 3x5"},
                "at": "4m",
                "alerts": [{"job": JOB, "instance": "boot1:8080"}],
            }],
            "quiet": [{
                "series": {'ironboot_manifest_errors{job="ironboot",instance="boot1:8080"}': "0 3 0x5"},
                "at": "4m",
            }],
        },
    },
    {
        "name": "IronbootRolloutHalted",
        "expr": 'ironboot_rollout_state{state="halted"} == 1',
        "for": "0m",
        "severity": "critical",
        "summary": "the rolling upgrade is halted",
        "description": (
            "The rollout on {{ $labels.instance }} halted on a failed gate or a timeout; no other "
            "machine will be touched until an operator acts. /status names the machine and gate."),
        "tests": {
            "fire": [{
                "series": {
                    'ironboot_rollout_state{job="ironboot",instance="boot1:8080",state="progressing"}': "1 1 0x5",
                    'ironboot_rollout_state{job="ironboot",instance="boot1:8080",state="halted"}': "0 0 1x5",
                },
                "at": "4m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "state": "halted"}],
            }],
            "quiet": [{
                "series": {
                    'ironboot_rollout_state{job="ironboot",instance="boot1:8080",state="progressing"}': "1x6",
                    'ironboot_rollout_state{job="ironboot",instance="boot1:8080",state="halted"}': "0x6",
                },
                "at": "4m",
            }],
        },
    },
    {
        "name": "IronbootRolloutStepTimeout",
        "expr": ("ironboot_rollout_step_started_timestamp_seconds > 0\n"
                 "and\n"
                 "time() - ironboot_rollout_step_started_timestamp_seconds"
                 " > ironboot_rollout_step_timeout_seconds"),
        "for": "0m",
        "severity": "critical",
        "summary": "a rollout step is past its timeout",
        "description": (
            "The current rollout step on {{ $labels.instance }} has run longer than its timeout: "
            "the machine it upgrades has not passed its gate. /status names the machine and gate."),
        "tests": {
            "fire": [{
                # A step started at t=60 s with a 300 s timeout, still running at 10 min.
                "series": {
                    'ironboot_rollout_step_started_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0 60x12",
                    'ironboot_rollout_step_timeout_seconds{job="ironboot",instance="boot1:8080"}': "300x12",
                },
                "at": "10m",
                "alerts": [{"job": JOB, "instance": "boot1:8080"}],
            }],
            "quiet": [{
                "series": {
                    'ironboot_rollout_step_started_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0 60x6 0x6",
                    'ironboot_rollout_step_timeout_seconds{job="ironboot",instance="boot1:8080"}': "300x12",
                },
                "at": "10m",
            }, {
                # Still within the timeout.
                "series": {
                    'ironboot_rollout_step_started_timestamp_seconds{job="ironboot",instance="boot1:8080"}': "0x7 420x6",
                    'ironboot_rollout_step_timeout_seconds{job="ironboot",instance="boot1:8080"}': "300x12",
                },
                "at": "10m",
            }],
        },
    },
    {
        "name": "IronbootMachineNotReady",
        "expr": "ironboot_machine_ready == 0",
        "for": "10m",
        "severity": "critical",
        "summary": "machine {{ $labels.machine }} has not been ready for 10 minutes",
        "description": (
            "{{ $labels.instance }} reports machine {{ $labels.machine }} not ready (not booted, "
            "Talos API unreachable, or services unhealthy) for 10 minutes."),
        "tests": {
            "fire": [{
                "series": {
                    'ironboot_machine_ready{job="ironboot",instance="boot1:8080",machine="worker1"}': "1 0x15",
                    'ironboot_machine_ready{job="ironboot",instance="boot1:8080",machine="worker2"}': "1x16",
                },
                "at": "12m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "machine": "worker1"}],
            }],
            "quiet": [{
                # A reboot of a few minutes during a rollout.
                "series": {'ironboot_machine_ready{job="ironboot",instance="boot1:8080",machine="worker1"}': "1 0x4 1x10"},
                "at": "12m",
            }],
        },
    },
    {
        "name": "IronbootUnknownMacBooting",
        "expr": new_or_increased("ironboot_boot_unmatched_total", "", "handler"),
        "for": "0m",
        "severity": "warning",
        "summary": "a machine that no group matches is trying to boot",
        "description": (
            "{{ $labels.instance }} answered a {{ $labels.handler }} boot request that matched "
            "no group in the last 10 minutes: a new or replaced machine whose MAC is in no "
            "manifest, or a wrong DHCP scope. It gets no boot script."),
        "tests": {
            "fire": [{
                "series": {'ironboot_boot_unmatched_total{job="ironboot",instance="boot1:8080",handler="ipxe"}': "0 0 1 1 1"},
                "at": "4m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "handler": "ipxe"}],
            }, {
                # The first unmatched request since the server started: the series
                # appears at 1.
                "series": {'ironboot_boot_unmatched_total{job="ironboot",instance="boot1:8080",handler="grub"}': "_x12 1x5"},
                "at": "15m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "handler": "grub"}],
            }],
            "quiet": [{
                "series": {'ironboot_boot_unmatched_total{job="ironboot",instance="boot1:8080",handler="ipxe"}': "0x20"},
                "at": "15m",
            }, {
                # Long over.
                "series": {'ironboot_boot_unmatched_total{job="ironboot",instance="boot1:8080",handler="ipxe"}': "0 1x30"},
                "at": "25m",
            }],
        },
    },
    {
        "name": "IronbootConfigFetchRefused",
        "expr": new_or_increased("ironboot_config_fetch_total", f'result=~"{REFUSED}"', "result"),
        "for": "0m",
        "severity": "warning",
        "summary": "machine-config requests were refused ({{ $labels.result }})",
        "description": (
            "{{ $labels.instance }} refused /config requests in the last 10 minutes with result "
            "{{ $labels.result }}. A machine that cannot fetch its config does not install; "
            "a refusal you do not expect may be someone probing for machine secrets."),
        "tests": {
            "fire": [{
                "series": {
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="served"}': "0+1x10",
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="denied_address"}': "0 0 2x8",
                },
                "at": "4m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "result": "denied_address"}],
            }, {
                # The first refusal since the server started: the series appears at 1.
                "series": {
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="served"}': "0+1x20",
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="rate_limited"}': "_x15 1x5",
                },
                "at": "17m",
                "alerts": [{"job": JOB, "instance": "boot1:8080", "result": "rate_limited"}],
            }],
            "quiet": [{
                "series": {
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="served"}': "0+1x10",
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="denied_address"}': "0x10",
                    # Not a refusal: a request without a MAC.
                    'ironboot_config_fetch_total{job="ironboot",instance="boot1:8080",result="bad_request"}': "0+1x10",
                },
                "at": "4m",
            }],
        },
    },
    {
        "name": "IronbootAssetVerifyFailed",
        "expr": "increase(ironboot_asset_verify_failures_total[30m]) > 0",
        "for": "0m",
        "severity": "critical",
        "summary": "a downloaded Talos asset failed its SHA-512 check",
        "description": (
            "{{ $labels.instance }} downloaded a kernel or initramfs whose SHA-512 did not match "
            "the release manifest in the last 30 minutes. The release is held back (machines "
            "keep their previous plan). A wrong checksum in git, or the download was altered."),
        "tests": {
            "fire": [{
                "series": {'ironboot_asset_verify_failures_total{job="ironboot",instance="boot1:8080"}': "0 0 1x5"},
                "at": "4m",
                "alerts": [{"job": JOB, "instance": "boot1:8080"}],
            }],
            "quiet": [{
                "series": {'ironboot_asset_verify_failures_total{job="ironboot",instance="boot1:8080"}': "0x10"},
                "at": "8m",
            }],
        },
    },
]

# ---------------------------------------------------------------------------------------
# Dashboards. Panel: (title, kind, [targets], options). A target: (expr, legend) or
# (expr, legend, "table") for an instant table query. $instance is the dashboard's
# instance variable; $__rate_interval is Grafana's.
# ---------------------------------------------------------------------------------------

SEL = 'job="' + JOB + '", instance=~"$instance"'
RI = "$__rate_interval"


def q(expr, legend="", fmt="time_series"):
    return {"expr": expr, "legend": legend, "format": fmt}


def table(expr):
    return q(expr, "", "table")


def quantiles(metric, by, extra=""):
    out = []
    for p in ("0.5", "0.95", "0.99"):
        label = "p" + p[2:].ljust(2, "0") if p != "0.5" else "p50"
        legend = "{{" + by + "}} " + label if by else label
        sel = SEL + extra
        by_clause = f"le, {by}" if by else "le"
        out.append(q(f"histogram_quantile({p}, sum by ({by_clause}) "
                     f"(rate({metric}_bucket{{{sel}}}[{RI}])))", legend))
    return out


DASHBOARDS = [
    {
        "file": "fleet.json",
        "uid": "ironboot-fleet",
        "title": "ironboot / Fleet",
        "tags": ["ironboot", "talos", "fleet"],
        "description": "Machines, their versions and phases, and the rolling upgrade.",
        "rows": [
            ("Machines", [
                ("Machines by phase", "piechart",
                 [q(f"count by (phase) (ironboot_machine_info{{{SEL}}})", "{{phase}}")], {"w": 8}),
                ("Machines not ready", "stat",
                 [q(f"count(ironboot_machine_ready{{{SEL}}} == 0) or vector(0)", "not ready")],
                 {"w": 4, "unit": "none", "thresholds": [0, 1]}),
                ("Failed machines", "table",
                 [table(f'ironboot_machine_info{{{SEL}, phase=~"failed|down"}}')], {"w": 12, "labels_only": True}),
                ("Desired vs observed version", "table",
                 [table(f"ironboot_machine_info{{{SEL}}}")], {"w": 24, "h": 10, "labels_only": True}),
                ("Since last boot", "table",
                 [table(f"time() - ironboot_machine_last_boot_timestamp_seconds{{{SEL}}}")],
                 {"w": 12, "unit": "s"}),
                ("Machine ready", "state-timeline",
                 [q(f"ironboot_machine_ready{{{SEL}}}", "{{machine}}")], {"w": 12}),
            ]),
            ("Rollout", [
                ("Rollout state", "stat",
                 [q(f"ironboot_rollout_state{{{SEL}}} == 1", "{{state}}")],
                 {"w": 6, "text": "name"}),
                ("Rollout progress", "bargauge",
                 [q(f"sum by (state) (ironboot_rollout_nodes{{{SEL}}})", "{{state}}")], {"w": 6}),
                ("Current step", "table",
                 [table(f"ironboot_rollout_current_step_info{{{SEL}}}")], {"w": 12, "labels_only": True}),
                ("Current step: elapsed and timeout", "timeseries",
                 [q(f"(time() - ironboot_rollout_step_started_timestamp_seconds{{{SEL}}}) and "
                    f"ironboot_rollout_step_started_timestamp_seconds{{{SEL}}} > 0", "elapsed"),
                  q(f"ironboot_rollout_step_timeout_seconds{{{SEL}}}", "timeout")],
                 {"w": 12, "unit": "s"}),
                ("Node boot duration", "timeseries",
                 quantiles("ironboot_node_boot_duration_seconds", "role"), {"w": 12, "unit": "s"}),
                ("Talos API requests", "timeseries",
                 [q(f"sum by (call, result) (rate(ironboot_talos_api_requests_total{{{SEL}}}[{RI}]))",
                    "{{call}} {{result}}")], {"w": 24, "unit": "reqps"}),
            ]),
        ],
    },
    {
        "file": "bootserver.json",
        "uid": "ironboot-bootserver",
        "title": "ironboot / Boot server",
        "tags": ["ironboot", "talos", "boot"],
        "description": "HTTP and TFTP boot traffic, latency, assets and machine-config fetches.",
        "rows": [
            ("Requests", [
                ("Up", "stat", [q(f"up{{{SEL}}}", "{{instance}}")],
                 {"w": 4, "thresholds": [0, 1]}),
                ("Requests by handler and code", "timeseries",
                 [q(f"sum by (handler, code) (rate(ironboot_http_requests_total{{{SEL}}}[{RI}]))",
                    "{{handler}} {{code}}")], {"w": 20, "unit": "reqps"}),
                ("Latency p50 / p95 / p99", "timeseries",
                 quantiles("ironboot_http_request_duration_seconds", "handler",
                           ', handler!="assets"'), {"w": 12, "unit": "s"}),
                ("Asset latency p50 / p95 / p99", "timeseries",
                 quantiles("ironboot_http_request_duration_seconds", "",
                           ', handler="assets"'), {"w": 12, "unit": "s"}),
            ]),
            ("Boot", [
                ("Unmatched boot requests (unknown MACs)", "timeseries",
                 [q(f"sum by (handler) (increase(ironboot_boot_unmatched_total{{{SEL}}}[{RI}]))",
                    "{{handler}}")], {"w": 12, "unit": "none"}),
                ("Boot selections by group", "timeseries",
                 [q(f"sum by (group) (increase(ironboot_boot_selections_total{{{SEL}}}[{RI}]))",
                    "{{group}}")], {"w": 12, "unit": "none"}),
                ("Machine configs served and refused", "timeseries",
                 [q(f"sum by (result) (increase(ironboot_config_fetch_total{{{SEL}}}[{RI}]))",
                    "{{result}}")], {"w": 12, "unit": "none"}),
                ("Asset throughput", "timeseries",
                 [q(f"sum(rate(ironboot_asset_bytes_sent_total{{{SEL}}}[{RI}]))", "HTTP assets"),
                  q(f"sum(rate(ironboot_tftp_bytes_sent_total{{{SEL}}}[{RI}]))", "TFTP")],
                 {"w": 12, "unit": "Bps"}),
                ("TFTP requests by result", "timeseries",
                 [q(f"sum by (result) (rate(ironboot_tftp_requests_total{{{SEL}}}[{RI}]))",
                    "{{result}}")], {"w": 12, "unit": "reqps"}),
                ("TFTP transfers in progress", "timeseries",
                 [q(f"sum(ironboot_tftp_transfers_active{{{SEL}}})", "active")], {"w": 12}),
            ]),
            ("Store", [
                ("Groups and profiles served", "timeseries",
                 [q(f"ironboot_store_groups{{{SEL}}}", "groups"),
                  q(f"ironboot_store_profiles{{{SEL}}}", "profiles")], {"w": 8}),
                ("Invalid files", "stat",
                 [q(f"max(ironboot_store_invalid_files{{{SEL}}})", "invalid")],
                 {"w": 4, "thresholds": [0, 1]}),
                ("Store reloads", "timeseries",
                 [q(f"sum by (result) (increase(ironboot_store_reloads_total{{{SEL}}}[{RI}]))",
                    "{{result}}")], {"w": 12, "unit": "none"}),
            ]),
        ],
    },
    {
        "file": "gitops.json",
        "uid": "ironboot-gitops",
        "title": "ironboot / GitOps",
        "tags": ["ironboot", "talos", "gitops"],
        "description": "The cluster repository: served revision, fetches, reconciles and rejected commits.",
        "rows": [
            ("Source", [
                ("Served revision", "table",
                 [table(f"ironboot_source_revision_info{{{SEL}}} == 1")], {"w": 12, "labels_only": True}),
                ("Age of the last good fetch", "stat",
                 [q(f"time() - ironboot_source_last_success_timestamp_seconds{{{SEL}}}",
                    "{{instance}}")],
                 {"w": 6, "unit": "s", "thresholds": [0, 3 * POLL_INTERVAL_SECONDS]}),
                ("Manifest errors (newest revision)", "stat",
                 [q(f"max(ironboot_manifest_errors{{{SEL}}})", "errors")],
                 {"w": 6, "thresholds": [0, 1]}),
                ("Fetches by result", "timeseries",
                 [q(f"sum by (result) (increase(ironboot_source_fetch_total{{{SEL}}}[{RI}]))",
                    "{{result}}")], {"w": 12, "unit": "none"}),
                ("Manifest errors over time", "timeseries",
                 [q(f"ironboot_manifest_errors{{{SEL}}}", "{{instance}}")], {"w": 12}),
            ]),
            ("Reconcilers", [
                ("Reconciles by reconciler and result", "timeseries",
                 [q(f"sum by (reconciler, result) (increase(ironboot_reconcile_total{{{SEL}}}[{RI}]))",
                    "{{reconciler}} {{result}}")], {"w": 12, "unit": "none"}),
                ("Reconcile errors", "timeseries",
                 [q(f'sum by (reconciler) (increase(ironboot_reconcile_total{{{SEL}, result="error"}}[{RI}]))',
                    "{{reconciler}}")], {"w": 12, "unit": "none"}),
                ("Reconcile duration p50 / p95 / p99", "timeseries",
                 quantiles("ironboot_reconcile_duration_seconds", "reconciler"),
                 {"w": 24, "unit": "s"}),
            ]),
            ("Assets", [
                ("Asset downloads", "timeseries",
                 [q(f"sum(rate(ironboot_asset_download_bytes_total{{{SEL}}}[{RI}]))", "downloaded")],
                 {"w": 12, "unit": "Bps"}),
                ("Asset verification failures", "timeseries",
                 [q(f"sum(increase(ironboot_asset_verify_failures_total{{{SEL}}}[{RI}]))", "failures")],
                 {"w": 12, "unit": "none"}),
            ]),
        ],
    },
]

DS = "${DS_PROMETHEUS}"

# ---------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------


def anchor(name):
    """The GitHub anchor of a '## Name' heading in RUNBOOK.md."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower().replace(" ", "-"))


def rule_groups(runbook_base):
    rules = []
    for a in ALERTS:
        rule = {"alert": a["name"], "expr": a["expr"]}
        if a["for"] != "0m":
            rule["for"] = a["for"]
        rule["labels"] = {"severity": a["severity"]}
        rule["annotations"] = annotations(a, runbook_base)
        rules.append(rule)
    return [{"name": "ironboot", "rules": rules}]


def annotations(a, runbook_base):
    return {
        "summary": a["summary"],
        "description": a["description"],
        "runbook_url": f"{runbook_base}#{anchor(a['name'])}",
    }


PLAIN = re.compile(r"^[A-Za-z0-9_./:-][A-Za-z0-9_ ./:=-]*$")
RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(s):
    if isinstance(s, bool):
        return "true" if s else "false"
    if isinstance(s, (int, float)):
        return str(s)
    if PLAIN.match(s) and s.lower() not in RESERVED and not s.endswith(" ") and \
            not re.match(r"^[0-9.+-]+$", s) and ": " not in s:
        return s
    return json.dumps(s, ensure_ascii=False)


def yaml(value, indent=0):
    """Block-style YAML for dicts, lists and strings (multi-line strings as |-)."""
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(yaml(v, indent + 2 if isinstance(v, dict) else indent))
            elif isinstance(v, str) and "\n" in v:
                out.append(f"{pad}{k}: |-")
                out.extend(pad + "  " + line for line in v.split("\n"))
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                out.append(f"{pad}{k}: {scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                block = yaml(item, indent + 2)
                out.append(pad + "- " + block[indent + 2:])
            else:
                out.append(f"{pad}- {scalar(item)}")
    return "\n".join(out)


HEADER = ("# Generated by dashboards/generate.py from its ALERTS list: edit that, then run\n"
          "#   python3 dashboards/generate.py\n")


def rules_file(runbook_base):
    return HEADER + yaml({"groups": rule_groups(runbook_base)}) + "\n"


def prometheus_rule(runbook_base):
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "ironboot",
            "namespace": "ironboot",
            "labels": {"app.kubernetes.io/name": "ironboot", "app.kubernetes.io/component": "alerts"},
        },
        "spec": {"groups": rule_groups(runbook_base)},
    }
    return HEADER + yaml(doc) + "\n"


def expand(template, labels):
    """Expands the Go templates used in annotations for the given labels."""
    def cond(m):
        return m.group(2) if labels.get(m.group(1)) else ""
    out = re.sub(r"\{\{ if \$labels\.(\w+) \}\}(.*?)\{\{ end \}\}", cond, template)
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), out)


def tests_file(runbook_base):
    tests = []
    for a in ALERTS:
        cases = a["tests"]
        if not cases["fire"] or not cases["quiet"]:
            sys.exit(f"generate.py: alert {a['name']} needs a fire and a quiet test case")
        for kind in ("fire", "quiet"):
            for case in cases[kind]:
                exp = []
                for labels in case.get("alerts", []):
                    all_labels = dict(labels)
                    all_labels["severity"] = a["severity"]
                    ann = annotations(a, runbook_base)
                    exp.append({
                        "exp_labels": all_labels,
                        "exp_annotations": {k: expand(v, all_labels) for k, v in ann.items()},
                    })
                tests.append({
                    "name": f"{a['name']} {kind}s",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in case["series"].items()],
                    "alert_rule_test": [{"eval_time": case["at"], "alertname": a["name"],
                                         "exp_alerts": exp}],
                })
    doc = {"rule_files": ["prometheus-rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    return HEADER + yaml(doc) + "\n"


def panel_json(pid, x, y, title, kind, targets, opts):
    w, h = opts.get("w", 12), opts.get("h", 8)
    p = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": DS},
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    for i, t in enumerate(targets):
        target = {
            "refId": chr(ord("A") + i),
            "datasource": {"type": "prometheus", "uid": DS},
            "expr": t["expr"],
            "legendFormat": t["legend"],
        }
        if t["format"] == "table":
            target.update({"format": "table", "instant": True, "range": False})
        else:
            target.update({"range": True})
        p["targets"].append(target)
    defaults = p["fieldConfig"]["defaults"]
    if "unit" in opts:
        defaults["unit"] = opts["unit"]
    if "thresholds" in opts:
        ok, bad = opts["thresholds"]
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": bad}]}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": opts.get("text", "auto"), "colorMode": "value"}
    elif kind == "table":
        # Info gauges (value 1) show their labels only.
        hidden = {"Time": True, "__name__": True, "job": True}
        if opts.get("labels_only"):
            hidden["Value"] = True
        p["transformations"] = [{"id": "organize", "options": {"excludeByName": hidden}}]
    elif kind == "piechart":
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif kind == "bargauge":
        p["options"] = {"displayMode": "basic", "orientation": "horizontal",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return p


def dashboard_json(d):
    panels = []
    pid = 1
    y = 0
    for row_title, row_panels in d["rows"]:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        x = 0
        row_h = 0
        for title, kind, targets, opts in row_panels:
            w = opts.get("w", 12)
            if x + w > 24:
                x, y = 0, y + row_h
                row_h = 0
            panels.append(panel_json(pid, x, y, title, kind, targets, opts))
            pid += 1
            x += w
            row_h = max(row_h, opts.get("h", 8))
        y += row_h
    dash = {
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes ironboot (job \"" + JOB + "\")",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": d["uid"],
        "title": d["title"],
        "description": d["description"],
        "tags": d["tags"],
        "schemaVersion": 36,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "links": [{"title": "ironboot", "type": "dashboards", "tags": ["ironboot"],
                   "asDropdown": True}],
        "annotations": {"list": []},
        "templating": {"list": [{
            "name": "instance",
            "label": "instance",
            "type": "query",
            "datasource": {"type": "prometheus", "uid": DS},
            "query": {"query": f'label_values(up{{job="{JOB}"}}, instance)', "refId": "instance"},
            "definition": f'label_values(up{{job="{JOB}"}}, instance)',
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,
            "sort": 1,
        }]},
        "panels": panels,
    }
    return json.dumps(dash, indent=2, ensure_ascii=False) + "\n"


def outputs(runbook_base):
    files = {
        "dashboards/prometheus-rules.yaml": rules_file(runbook_base),
        "dashboards/alerts_test.yaml": tests_file(runbook_base),
        "deploy/kubernetes/prometheusrule.yaml": prometheus_rule(runbook_base),
    }
    for d in DASHBOARDS:
        files["dashboards/" + d["file"]] = dashboard_json(d)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare instead of writing; exit 1 naming the files that differ")
    parser.add_argument("--runbook-base", default=RUNBOOK_BASE)
    parser.add_argument("--root", default=ROOT, help="repository root (default: this script's)")
    args = parser.parse_args()
    stale = []
    for rel, content in outputs(args.runbook_base).items():
        path = os.path.join(args.root, rel)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == content
            except FileNotFoundError:
                same = False
            if not same:
                stale.append(rel)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
    if stale:
        print("generate.py: out of date (run python3 dashboards/generate.py): " +
              ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
