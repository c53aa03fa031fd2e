"""Monitoring objects: a ServiceMonitor for the controller, a PrometheusRule with each warm
pool's SLI and alerts, and a Grafana dashboard ConfigMap (docs/monitoring.md).

Rules follow Sloth's layout: recording rules per pool and window, then multiwindow,
multi-burn-rate alerts on them (thresholds from components/sizing/alerts.py), then the
model's own alerts. Every pool-level series carries `namespace` and `warmpool_name`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..sizing.alerts import EMPTY_FOR, AlertPlan, plan_alerts, slo_window_seconds
from ..sizing.alerts import window as prom_duration
from ..sizing.model import LatencyTarget
from ..specs.monitoring import MonitoringSpec
from ..specs.template import TemplateSpec
from ..specs.warm_pool import WarmPoolSpec
from . import metrics
from .agent_sandbox import NAMESPACE
from .common import Manifest, obj

MONITORING_API = "monitoring.coreos.com/v1"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"
CONTROLLER_SERVICE = "agent-sandbox-controller"
CONTROLLER_JOB = CONTROLLER_SERVICE  # a ServiceMonitor's job label is the Service's name
RULES_NAME = "sandbox-infra-warm-pools"
DASHBOARD_NAME = "sandbox-infra-warm-pools-dashboard"
DASHBOARD_KEY = "sandbox-infra-warm-pools.json"
# The Grafana sidecar (kiwigrid k8s-sidecar, as in the grafana and kube-prometheus-stack
# Helm charts) loads every ConfigMap carrying this label as a dashboard.
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}

# Recording rules (level:metric:operations). All carry namespace and warmpool_name.
CLAIMS = "warm_pool:claims:rate"  # + window: claims per second, 0 when none arrive
MISSES = "warm_pool:claim_misses:ratio_rate"  # + window: claims not served by a ready warm sandbox
READY = "warm_pool:ready_sandboxes:count"
COLD_READY = "warm_pool:cold_ready_seconds:mean_rate"  # + window
LATENCY = "warm_pool:claim_startup_seconds:{quantile}_rate"  # + window; per template, as the histogram
SLOW = "warm_pool:slow_claims:ratio_rate"  # + window; latency targets: claims slower than the bound
DASHBOARD_WINDOW = 5 * 60
CONTROLLER_DOWN_FOR = 5 * 60
RECONCILE_WINDOW = 15 * 60
RECONCILE_ERROR_RATIO = 0.1
MODEL_ALERT_FOR = 5 * 60


def _number(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class PoolMonitoring:
    """One pool as the rules see it."""

    pool: WarmPoolSpec
    template: TemplateSpec
    version: str
    plan: AlertPlan | None
    """None for a pool without an SLO: it gets its SLI and the empty-pool alert only."""

    @property
    def namespace(self) -> str:
        return self.template.tenant

    @property
    def labels(self) -> dict[str, str]:
        return {"namespace": self.namespace, "warmpool_name": self.pool.name}

    def select(self, record: str) -> str:
        return record + "{" + ",".join(f'{k}="{v}"' for k, v in self.labels.items()) + "}"


def pool_alert_plan(pool: WarmPoolSpec, monitoring: MonitoringSpec, scale: float = 1.0) -> AlertPlan | None:
    """The thresholds of one pool (None without an SLO); `scale` compresses every window."""
    slo = pool.slo
    if slo is None:
        return None
    plan = slo.autoscaling_plan
    replicas = plan.max_replicas if plan else pool.replicas
    rates = [plan.high_rate] if plan else slo.rates
    return plan_alerts(replicas, rates, slo.ready, slo.target, slo_window_seconds(monitoring.slo_window),
                       monitoring.min_claims, scale)


@dataclass(frozen=True)
class MonitoringScope:
    """What the monitoring objects are about (the Monitoring component's args, as specs)."""

    settings: MonitoringSpec
    pools: tuple[tuple[WarmPoolSpec, TemplateSpec], ...]
    """The pools watched, each with its template."""
    version: str
    """The agent-sandbox release whose controller is scraped: its metrics' names and labels."""
    cluster: str
    """The cluster's name, in the dashboard's title and uid."""


def pools(scope: MonitoringScope, scale: float = 1.0) -> list[PoolMonitoring]:
    return [PoolMonitoring(p, template, scope.version, pool_alert_plan(p, scope.settings, scale))
            for p, template in scope.pools]


def _windows(pool: PoolMonitoring, scale: float) -> list[float]:
    windows = {DASHBOARD_WINDOW * scale}
    if pool.plan is not None:
        windows |= {w for a in pool.plan.burn_alerts for w in (a.long, a.short)} | {pool.plan.rate_window}
    return sorted(windows)


def latency_bucket(pool: PoolMonitoring) -> int | None:
    """For a p99ClaimLatency target: the largest histogram bucket (ms) within the bound, so the
    slow-claim ratio never undercounts; None for other pools or a bound below every bucket."""
    slo = pool.pool.slo
    target = slo.target if slo is not None else None
    if not isinstance(target, LatencyTarget):
        return None
    bound_ms = target.bound * 1000
    within = [b for b in metrics.LATENCY_BUCKETS_MS if b <= bound_ms + 1e-9]
    return within[-1] if within else None


def _record(name: str, expr: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": dict(labels)}


def recording_rules(pool: PoolMonitoring, scale: float = 1.0) -> list[dict[str, Any]]:
    ns, name, template = pool.namespace, pool.pool.name, pool.template.name
    total = metrics.pool_claims(pool.version, ns, name, template)
    good = metrics.pool_warm_ready_claims(ns, name)
    rules = []
    for window in _windows(pool, scale):
        w = prom_duration(window)
        # `or vector(0)`: no pool claim yet means no series; a rate of 0 must still show.
        rules.append(_record(CLAIMS + w, f"sum(rate({total}[{w}])) or vector(0)", pool.labels))
        # Good events missing while claims exist means every claim missed, not "no data".
        rules.append(_record(MISSES + w, f"1 - ((sum(rate({good}[{w}])) or vector(0)) / sum(rate({total}[{w}])))",
                             pool.labels))
    ready = (metrics.pool_ready_sandboxes(ns, template) if metrics.has_pool_labels(pool.version)
             else metrics.warm_ready_sandboxes(ns, template))
    rules.append(_record(READY, f"sum({ready}) or vector(0)", pool.labels))
    w = prom_duration(DASHBOARD_WINDOW * scale)
    buckets = metrics.latency_buckets(metrics.CONTROLLER_LATENCY, template)
    for quantile in (0.5, 0.99):
        rules.append(_record(LATENCY.format(quantile=f"p{quantile * 100:g}") + w,
                             f"histogram_quantile({quantile:g}, sum by (le) (rate({buckets}[{w}]))) / 1000",
                             {**pool.labels, "sandbox_template": template}))
    bound = latency_bucket(pool)
    if bound is not None:
        # Prometheus 3 writes a bucket bound as "2000.0", 2.x as "2000": match both.
        le = f'le=~"{bound}(\\\\.0)?"'
        count = f"{metrics.CONTROLLER_LATENCY}_count{{sandbox_template=\"{template}\"}}"
        within = buckets[:-1] + "," + le + "}"
        rules.append(_record(SLOW + w, f"1 - ((sum(rate({within}[{w}])) or vector(0)) / sum(rate({count}[{w}])))",
                             {**pool.labels, "sandbox_template": template, "bound_ms": str(bound)}))
    if pool.plan is not None:
        w = prom_duration(pool.plan.ready_time_window)
        rules.append(_record(
            COLD_READY + w,
            f"sum(rate({metrics.cold_creation('sum', ns, template)}[{w}])) / "
            f"sum(rate({metrics.cold_creation('count', ns, template)}[{w}])) / 1000",
            {**pool.labels, "sandbox_template": template}))
    return rules


def _alert(name: str, expr: str, severity: str, summary: str, description: str, runbook: str,
           labels: dict[str, str], for_seconds: float = 0) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_seconds:
        rule["for"] = prom_duration(for_seconds)
    rule["labels"] = {**labels, "severity": severity}
    rule["annotations"] = {"summary": summary, "description": description,
                           "runbook_url": f"{runbook}#{name.lower()}"}
    return rule


SEVERITY = {"page": "critical", "ticket": "warning"}


def alert_rules(pool: PoolMonitoring, runbook: str, scale: float = 1.0) -> list[dict[str, Any]]:
    ns, name = pool.namespace, pool.pool.name
    where = f"warm pool {ns}/{name}"
    rules = []
    if pool.plan is not None:
        plan = pool.plan
        for severity in ("page", "ticket"):
            parts = []
            for a in (a for a in plan.burn_alerts if a.severity == severity):
                long, short = prom_duration(a.long), prom_duration(a.short)
                t = _number(a.threshold)
                parts.append(f"({pool.select(MISSES + long)} > {t} and {pool.select(MISSES + short)} > {t}"
                             f" and {pool.select(CLAIMS + long)} * {round(a.long)} >= {a.min_claims})")
            windows = ", ".join(f"{_number(a.burn_rate)}x over {prom_duration(a.long)}/{prom_duration(a.short)}"
                                for a in plan.burn_alerts if a.severity == severity)
            rules.append(_alert(
                "WarmPoolErrorBudgetBurn", " or ".join(parts), SEVERITY[severity],
                f"{where} burns its miss budget too fast ({severity})",
                f"{{{{ $value | humanizePercentage }}}} of claims missed the pool (SLO allows "
                f"{plan.budget:.4%} over {prom_duration(plan.slo_window)}; burn rates {windows}).",
                runbook, {**pool.labels, "slo_severity": severity}))
        rate_w = prom_duration(plan.rate_window)
        rules.append(_alert(
            "WarmPoolClaimRateAboveSized", f"{pool.select(CLAIMS + rate_w)} > {_number(plan.rate_threshold)}",
            "warning", f"{where} gets more claims than it was sized for",
            f"{{{{ $value | humanize }}}} claims/s over {rate_w}; sized for {_number(plan.sized_rate)}/s, its "
            f"replicas meet the target up to {_number(plan.capacity_rate)}/s.",
            runbook, pool.labels, MODEL_ALERT_FOR * scale))
        ready_w = prom_duration(plan.ready_time_window)
        rules.append(_alert(
            "WarmPoolColdReadyTimeHigh",
            f"{pool.select(COLD_READY + ready_w)} > {_number(plan.ready_time)}",
            "warning", f"{where}: sandboxes take longer to become ready than the sizing assumed",
            f"cold sandboxes of template {pool.template.name} became ready in {{{{ $value | humanize }}}}s on "
            f"average over {ready_w}; the pool was sized for readyTime {_number(plan.ready_time)}s.",
            runbook, pool.labels, MODEL_ALERT_FOR * scale))
    if metrics.has_pool_labels(pool.version):
        w = prom_duration(DASHBOARD_WINDOW * scale)
        rules.append(_alert(
            "WarmPoolEmpty", f"{pool.select(READY)} == 0 and {pool.select(CLAIMS + w)} > 0", "critical",
            f"{where} has no ready sandbox while claims arrive",
            "every claim is a cold start until the pool refills.", runbook, pool.labels, EMPTY_FOR * scale))
    return rules


def controller_rules(runbook: str, scale: float = 1.0) -> list[dict[str, Any]]:
    target = f'job="{CONTROLLER_JOB}",namespace="{NAMESPACE}"'
    w = prom_duration(RECONCILE_WINDOW * scale)
    return [
        _alert("AgentSandboxControllerDown", f"absent({metrics.UP}{{{target}}} == 1)", "critical",
               "the agent-sandbox controller is down or not scraped",
               "no claim is served and no pool refills while the controller is down.", runbook,
               # absent() of a comparison carries no labels: name the target here.
               {"job": CONTROLLER_JOB, "namespace": NAMESPACE}, CONTROLLER_DOWN_FOR * scale),
        _alert("AgentSandboxReconcileErrors",
               f"sum by (controller) (rate({metrics.RECONCILE_ERRORS}{{{target}}}[{w}])) / "
               f"sum by (controller) (rate({metrics.RECONCILE_TOTAL}{{{target}}}[{w}])) > {RECONCILE_ERROR_RATIO:g}",
               "warning", "agent-sandbox reconcile errors are rising",
               f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.controller }}}} reconciles failed over {w}.",
               runbook, {}, RECONCILE_WINDOW * scale),
    ]


def rule_groups(scope: MonitoringScope, scale: float = 1.0) -> list[dict[str, Any]]:
    """The PrometheusRule's groups; `scale` < 1 compresses every window (for tests)."""
    runbook = scope.settings.runbook_url
    groups = []
    for pool in pools(scope, scale):
        key = f"{pool.namespace}-{pool.pool.name}"
        groups.append({"name": f"warm-pool-{key}-sli", "rules": recording_rules(pool, scale)})
        groups.append({"name": f"warm-pool-{key}-alerts", "rules": alert_rules(pool, runbook, scale)})
    groups.append({"name": "agent-sandbox-controller", "rules": controller_rules(runbook, scale)})
    return groups


def build_monitoring(scope: MonitoringScope) -> list[Manifest]:
    settings = scope.settings
    if not settings.enabled:
        return []
    labels = dict(settings.labels)
    manifests = [
        obj(MONITORING_API, "ServiceMonitor", CONTROLLER_SERVICE, NAMESPACE, labels, spec={
            "selector": {"matchLabels": {"app": CONTROLLER_SERVICE}},
            "namespaceSelector": {"matchNames": [NAMESPACE]},
            "endpoints": [{
                "port": "metrics", "scheme": "http", "path": "/metrics", "interval": settings.scrape_interval,
                # The claim counter's own `namespace` label is the claim's namespace; without
                # honorLabels Prometheus would rename it exported_namespace and put the
                # controller's namespace in its place, so no pool selector would match.
                "honorLabels": True,
            }],
        }),
        obj(MONITORING_API, "PrometheusRule", RULES_NAME, NAMESPACE, labels, spec={"groups": rule_groups(scope)}),
    ]
    if settings.dashboard:
        manifests.append(obj("v1", "ConfigMap", DASHBOARD_NAME, settings.dashboard_namespace or NAMESPACE,
                             GRAFANA_DASHBOARD_LABEL, data={DASHBOARD_KEY: json.dumps(dashboard(scope), indent=1,
                                                                                       sort_keys=True)}))
    return manifests


# --- Grafana ------------------------------------------------------------------------------

def _panel(title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int, panel_id: int,
           thresholds: float | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if thresholds is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                                {"color": "green", "value": thresholds}]}
    return {
        "id": panel_id, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard_panels(scope: MonitoringScope, scale: float = 1.0) -> list[dict[str, Any]]:
    """Per pool: hit ratio vs target, claim rate vs sized rate, latency, ready sandboxes."""
    panels: list[dict[str, Any]] = []
    w = prom_duration(DASHBOARD_WINDOW * scale)
    for row, pool in enumerate(pools(scope, scale)):
        y, name = row * 9, f"{pool.namespace}/{pool.pool.name}"
        panels.append({"id": len(panels) + 1, "type": "row", "title": f"warm pool {name}",
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "collapsed": False, "panels": []})
        hit = [(f"1 - {pool.select(MISSES + w)}", "hit ratio")]
        rate = [(f"{pool.select(CLAIMS + w)} * 60", "claims/min")]
        target = None
        if pool.plan is not None:
            target = 1 - pool.plan.budget
            hit.append((f"vector({_number(target)})", "target"))
            rate += [(f"vector({_number(pool.plan.sized_rate * 60)})", "sized for"),
                     (f"vector({_number(pool.plan.capacity_rate * 60)})", "capacity at target")]
        template = pool.template.name
        latency = [(pool.select(LATENCY.format(quantile=q) + w), f"{q} controller") for q in ("p50", "p99")]
        if metrics.has_client_latency(pool.version):
            client = metrics.latency_buckets(metrics.CLIENT_LATENCY, template)
            latency.append((f"histogram_quantile(0.99, sum by (le) (rate({client}[{w}]))) / 1000", "p99 client"))
        ready = [(pool.select(READY), "ready"), (f"vector({pool.pool.replicas})", "replicas configured")]
        panels += [
            _panel(f"{name}: hit ratio vs target", hit, "percentunit", 0, y + 1, len(panels) + 1, target),
            _panel(f"{name}: claim rate vs sized rate", rate, "short", 6, y + 1, len(panels) + 2),
            _panel(f"{name}: claim latency ({template})", latency, "s", 12, y + 1, len(panels) + 3),
            _panel(f"{name}: ready sandboxes", ready, "short", 18, y + 1, len(panels) + 4),
        ]
    return panels


def dashboard(scope: MonitoringScope, scale: float = 1.0) -> dict[str, Any]:
    """The Grafana dashboard; `scale` < 1 reads the compressed windows of rule_groups(scope, scale)."""
    return {
        "title": f"Warm pools: {scope.cluster}",
        "uid": f"sandbox-infra-{scope.cluster}"[:40],
        "tags": ["sandbox-infra", "agent-sandbox", "slo"],
        "timezone": "utc", "schemaVersion": 39, "version": 1, "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": dashboard_panels(scope, scale),
    }


def rule_names(scope: MonitoringScope) -> set[str]:
    """Every recording rule's name: what a dashboard query may read besides controller metrics."""
    return {r["record"] for g in rule_groups(scope) for r in g["rules"] if "record" in r}
