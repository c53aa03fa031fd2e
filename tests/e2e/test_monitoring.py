"""The generated monitoring, live: a real Prometheus (Debian's `prometheus` binary) scrapes the
real agent-sandbox controller (built from its release tag, metrics on, out of cluster against
the e2e control plane) and evaluates the generated rules, with every window compressed 30-fold
(`rule_groups(scope, scale)`: 5m -> 10s, 1h -> 2m; burn rates and thresholds unchanged).

The official Python client (`k8s-agent-sandbox`) makes warm claims from a full pool, then the
pool is drained (replicas 0) and its claims go cold, then it refills. Checked: every selector in
the rules returns series; the empty-pool and page burn-rate alerts fire while the pool is
drained and resolve after it refills. The dashboard's queries are fetched over the run and
plotted (set UPDATE_DOCS_PICTURES=1 to write docs/monitoring-dashboard.png).

v0.5.6 only: k8s-agent-sandbox claims through v1beta1 `spec.warmPoolRef`, which v0.4.6 does not
serve (test_gateway.py says the same); v0.4.6's selectors are covered by promtool.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests
import yaml
from k8s_agent_sandbox import SandboxClient

from components.manifests.graph import monitoring_scope
from components.manifests.monitoring import CONTROLLER_JOB, dashboard_panels, rule_groups
from components.manifests.stack import render_stack
from components.specs import spec_from_config
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader, upstream_dir

from .controller import agent_sandbox_controller
from .controlplane import ControlPlane, control_plane, free_port, stop
from .fake_node import FakeControllerManager, FakeKubelet
from .helpers import require
from .kube import Kube, apply_all, is_true, wait_established, wait_for
from .warm_pool_env import EXTENSIONS, EXTENSIONS_GROUP, SANDBOXES

SCALE = 1 / 30
NAMESPACE, POOL, TEMPLATE = "agents-mon", "python", "python"
PROJECT = Path(__file__).resolve().parents[2]
PICTURE = PROJECT / "docs" / "monitoring-dashboard.png"


def stack() -> StackSpec:
    # A 95 % pool: the 1h page fires above a 72 % miss ratio (14.4 x 5 %), reachable in minutes.
    return spec_from_config({
        "cluster": {"name": "monitoring-e2e", "environment": "staging"},
        "agentSandbox": {"version": "v0.5.6"},
        # Audit, not enforce: k8s-agent-sandbox 1.0.8 stamps agents.x-k8s.io/client-first-requested-at
        # on its claims (the client latency histogram needs it), which sandbox-reserved-metadata refuses
        # under enforce. That conflict is the policy's to settle, not this test's.
        "policy": {"admission": "audit"},
        "tenants": [{"name": NAMESPACE, "quota": {"requestsCpu": "100", "requestsMemory": "200Gi", "limitsCpu": "200",
                                                  "limitsMemory": "400Gi", "pods": 500}}],
        "templates": [{"name": TEMPLATE, "tenant": NAMESPACE, "image": "ghcr.io/example/agent-python-runtime:3.12.7",
                       "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}}],
        "warmPools": [{"name": POOL, "template": TEMPLATE,
                       "slo": {"claimRate": "20/min", "readyTime": "4s", "hitRatio": 0.95}}],
        "monitoring": {"enabled": True, "minClaims": 3},
    })


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        return body["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 2) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query_range",
                                params={"query": expr, "start": start, "end": end, "step": step}, timeout=30)
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        return body["data"]["result"]

    def firing(self) -> list[dict[str, str]]:
        alerts = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [a["labels"] for a in alerts if a["state"] == "firing"]

    def is_firing(self, name: str, **labels: str) -> bool:
        return any(a["alertname"] == name and labels.items() <= a.items() for a in self.firing())


@contextlib.contextmanager
def prometheus(workdir: Path, metrics_port: int, spec: StackSpec) -> Iterator[Prometheus]:
    """Prometheus scraping the controller the way the generated ServiceMonitor says."""
    monitor = next(m for m in render_stack(spec, UpstreamLoader()) if m["kind"] == "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    (workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(monitoring_scope(spec), SCALE)}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [{
            # What the operator makes of the ServiceMonitor: job = the Service's name, the target's
            # namespace label, the endpoint's path, scheme and honorLabels.
            "job_name": CONTROLLER_JOB, "metrics_path": endpoint["path"], "scheme": endpoint["scheme"],
            "honor_labels": endpoint["honorLabels"],
            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"],
                                "labels": {"namespace": monitor["metadata"]["namespace"]}}],
        }],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = workdir / "logs" / "prometheus.log"
    log.parent.mkdir(exist_ok=True)
    process = subprocess.Popen([
        shutil.which("prometheus") or "prometheus", f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
    ], cwd=workdir, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
            return False

        wait_for("prometheus to be ready", ready, timeout=60, interval=0.25)
        yield Prometheus(url, process, log)
    finally:
        stop(process)


@dataclass
class Live:
    plane: ControlPlane
    kube: Kube
    prom: Prometheus
    spec: StackSpec
    client: SandboxClient
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return self.spec.warm_pools[0].replicas

    def ready_pool_sandboxes(self) -> int:
        items = self.kube.list(SANDBOXES, "Sandbox", NAMESPACE)["items"]
        return sum(1 for s in items if is_true(s, "Ready") and any(
            r["kind"] == "SandboxWarmPool" for r in s["metadata"].get("ownerReferences", [])))

    def scale_pool(self, replicas: int) -> None:
        self.kube.patch(EXTENSIONS, "SandboxWarmPool", POOL, NAMESPACE, {"spec": {"replicas": replicas}})

    def claim(self) -> str:
        """One claim through the official client, released at once (its launch is counted)."""
        sandbox = self.client.create_sandbox(warmpool=POOL, namespace=NAMESPACE, sandbox_ready_timeout=60)
        self.client.delete_sandbox(sandbox.claim_name, namespace=NAMESPACE)
        return sandbox.claim_name


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require("etcd", "kube-apiserver", "agent-sandbox-controller")
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not found: install Debian's prometheus package (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("monitoring")
    spec = stack()
    manifests = render_stack(spec, UpstreamLoader())
    operator_crds = [yaml.safe_load(p.read_text()) for p in
                     sorted(Path(upstream_dir(), "prometheus-operator", "v0.93.0").glob("monitoring.coreos.com_*.yaml"))]
    with control_plane(workdir) as plane:
        kube = plane.client()
        crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"] + operator_crds
        others = [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
        apply_all(kube, crds)
        wait_established(kube, crds)
        namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
        custom = sorted({(m["apiVersion"], m["kind"]) for m in others if m["apiVersion"].startswith(EXTENSIONS_GROUP)})
        metrics_port = free_port()
        api_client = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig))
        with (agent_sandbox_controller(plane, (f"--metrics-bind-address=127.0.0.1:{metrics_port}",)),
              FakeControllerManager(kube, namespaces, custom), FakeKubelet(kube),
              prometheus(workdir, metrics_port, spec) as prom, SandboxClient(api_client=api_client) as client):
            # The API server takes the ServiceMonitor and PrometheusRule under the operator's own CRDs.
            apply_all(kube, others)
            yield Live(plane, kube, prom, spec, client)


def selectors(groups: list[dict[str, Any]]) -> set[str]:
    """Every vector selector `name{matchers}` in the rules' expressions."""
    found = set()
    for group in groups:
        for rule in group["rules"]:
            found |= {m.group(0) for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*\{[^}]*\}", rule["expr"])}
    return found


def test_drain_and_refill_fire_and_resolve_the_alerts_and_every_selector_has_series(live: Live) -> None:
    prom, started = live.prom, time.time()
    wait_for("the controller's scrape target to be up",
             lambda: prom.query(f'up{{job="{CONTROLLER_JOB}"}} == 1'), timeout=60, interval=0.5)
    wait_for(f"pool {POOL} to fill", lambda: live.ready_pool_sandboxes() == live.replicas, timeout=90, interval=0.5)

    # Warm: claims served from the full pool (it refills in between).
    for _ in range(12):
        live.claim()
        wait_for("the pool to refill", lambda: live.ready_pool_sandboxes() == live.replicas, timeout=60, interval=0.2)
    live.marks["drained"] = time.time()

    # Drained: no sandbox waits; the client's claims go cold.
    live.scale_pool(0)
    wait_for("the pool to drain", lambda: live.ready_pool_sandboxes() == 0, timeout=60, interval=0.2)
    labels = {"namespace": NAMESPACE, "warmpool_name": POOL}
    deadline, cold, fired = time.monotonic() + 240, 0, None
    # Claims go on for at least 20 s of the drain, so that the picture shows it.
    while fired is None or time.time() < live.marks["drained"] + 20:
        if fired is None and prom.is_firing("WarmPoolEmpty", **labels) and prom.is_firing(
                "WarmPoolErrorBudgetBurn", slo_severity="page", **labels):
            fired = (cold, time.time() - live.marks["drained"])
            continue
        if time.monotonic() > deadline:
            records = prom.query('{__name__=~"warm_pool:.*"}')
            pytest.fail(f"after {cold} cold claims, firing: {prom.firing()}\nrecords: {records}")
        live.claim()
        cold += 1
    print(f"\ndrained: WarmPoolEmpty and the page burn alert fire after {fired[0]} cold claims "
          f"({fired[1]:.0f} s after draining)")
    live.marks["refilled"] = time.time()

    # Refilled: warm claims again; the empty-pool and page alerts resolve.
    live.scale_pool(live.replicas)
    wait_for("the pool to refill", lambda: live.ready_pool_sandboxes() == live.replicas, timeout=90, interval=0.2)
    deadline, resolved = time.monotonic() + 300, {}
    # The ticket pairs' short windows (2h, 6h: 4 and 12 minutes here) keep a ticket open for
    # that long after the burn stops, by design; the page and the empty pool must clear soon.
    alerts = {"WarmPoolEmpty": {}, "page burn": {"slo_severity": "page"}}
    while len(resolved) < len(alerts):
        assert time.monotonic() < deadline, f"still firing: {prom.firing()}"
        for name, extra in alerts.items():
            alert = "WarmPoolEmpty" if name == "WarmPoolEmpty" else "WarmPoolErrorBudgetBurn"
            if name not in resolved and not prom.is_firing(alert, **extra, **labels):
                resolved[name] = time.time() - live.marks["refilled"]
        live.claim()
        wait_for("the pool to refill", lambda: live.ready_pool_sandboxes() == live.replicas, timeout=60, interval=0.2)
    print("refilled: resolved after " + ", ".join(f"{n} {s:.0f} s" for n, s in resolved.items())
          + f"; ticket still open: {prom.is_firing('WarmPoolErrorBudgetBurn', slo_severity='ticket', **labels)}")
    # The picture runs a little past the last claim: wait until Prometheus has scraped past that mark.
    live.marks["end"] = time.time() + 2
    wait_for("a scrape after the run's end mark",
             lambda: prom.query(f'timestamp(up{{job="{CONTROLLER_JOB}"}}) >= {live.marks["end"]}'), timeout=30, interval=0.25)

    # Every selector the rules use returned series at some point of the run.
    groups = rule_groups(monitoring_scope(live.spec), SCALE)
    window = f"{int(time.time() - started) + 60}s"
    empty = [s for s in sorted(selectors(groups)) if not prom.query(f"count(last_over_time({s}[{window}]))")]
    assert empty == [], f"selectors without series: {empty}"
    print(f"all {len(selectors(groups))} selectors of the rules returned series")
    # And every dashboard query (the client-side latency too: the official client sets its timestamp).
    queries = [t["expr"] for p in dashboard_panels(monitoring_scope(live.spec), SCALE) if p["type"] != "row" for t in p["targets"]]
    assert [q for q in queries if not prom.query_range(q, started, time.time())] == []
    picture(live, started)


def picture(live: Live, started: float) -> None:
    """The dashboard's panels, drawn from the same queries over this run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in dashboard_panels(monitoring_scope(live.spec), SCALE) if p["type"] != "row"]
    figure, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(12, 7.5))
    for axis, panel in zip(axes.flat, panels, strict=True):
        for target in panel["targets"]:
            for series in live.prom.query_range(target["expr"], started, live.marks["end"]):
                points = [(float(t) - started, float(v)) for t, v in series["values"]]
                axis.plot(*zip(*points, strict=True), label=target["legendFormat"])
        for mark in ("drained", "refilled"):
            axis.axvline(live.marks[mark] - started, color="grey", linestyle=":", linewidth=1)
        axis.set_title(panel["title"].split(": ", 1)[1], fontsize=10)
        axis.set_xlabel("seconds (windows compressed 30x)")
        axis.legend(fontsize=7)
    figure.suptitle(f"Warm pool {NAMESPACE}/{POOL} live: real controller, real Prometheus, official client\n"
                    "(pool drained at the first dotted line, refilled at the second)", fontsize=10)
    figure.tight_layout()
    target = PICTURE if os.environ.get("UPDATE_DOCS_PICTURES") == "1" else live.plane.workdir / PICTURE.name
    figure.savefig(target, dpi=90)
    print(f"dashboard picture: {target}")
