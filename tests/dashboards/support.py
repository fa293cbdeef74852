"""Shared helpers for the dashboards/ and deploy/ tests (run by ctest, label dashboards).

Paths come from the environment ctest sets: IRONBOOT_SOURCE_DIR (the repository) and
IRONBOOT_BINARY (the built `ironboot`). Only 127.0.0.1 is used.
"""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get(
    "IRONBOOT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("IRONBOOT_BINARY", os.path.join(SOURCE_DIR, "build", "controller", "ironboot"))
DASHBOARDS = os.path.join(SOURCE_DIR, "dashboards")
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
DASHBOARD_FILES = ["fleet.json", "bootserver.json", "gitops.json"]


def run(args, cwd=None, env=None, check=False, timeout=60):
    """Runs a command; returns CompletedProcess with text stdout/stderr."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, target, timeout=5, source=None):
    """(status, body) of GET http://127.0.0.1:port/target; status 0 when nothing answers.
    `source`: the local address to connect from (any 127.x.y.z works on Linux), as a
    machine with that address would."""
    if source is not None:
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
        try:
            conn.request("GET", target)
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            return 0, ""
        finally:
            conn.close()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, ""


def wait_for(predicate, timeout=15.0, step=0.05):
    """Polls predicate until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def load_yaml_docs(path):
    import yaml  # Debian python3-yaml
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def panels(dashboard):
    """Every panel of a dashboard, rows' nested panels included."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_queries(dashboard):
    """(panel title, expr) for every Prometheus target of every panel."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if "expr" in t:
                yield p["title"], t["expr"]
