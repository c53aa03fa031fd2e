"""`monitoring:`: ServiceMonitor, PrometheusRule and dashboard, built from each pool's SLO.

Promtool runs the rules in test_monitoring_promtool.py; a real Prometheus scrapes the real
controller in tests/e2e/test_monitoring.py.
"""

from __future__ import annotations

import gc
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from components.errors import ConfigError
from components.manifests import metrics
from components.manifests.graph import monitoring_scope
from components.manifests.monitoring import (
    CONTROLLER_SERVICE,
    DASHBOARD_KEY,
    build_monitoring,
    dashboard,
    rule_groups,
    rule_names,
)
from components.manifests.stack import render_stack
from components.prerequisites import PROMETHEUS_OPERATOR, required_crds
from components.sizing.alerts import burn_alerts
from components.specs import load_stack, spec_from_config
from components.specs.stack import StackSpec
from components.stack import deploy
from components.upstream import UpstreamLoader

from .pulumi_harness import ClusterWithCrds, run_under_mocks
from .schemas import validation_errors

DOCS = Path(__file__).resolve().parents[1] / "docs" / "monitoring.md"


def config(version: str = "v0.5.6", monitoring: dict[str, Any] | None = None, **pool: Any) -> dict[str, Any]:
    return {
        "cluster": {"name": "test", "environment": "staging"},
        "agentSandbox": {"version": version},
        "policy": {"maxWarmPoolReplicas": 100},
        "tenants": [{"name": "agents"}],
        "templates": [{"name": "python", "tenant": "agents", "image": "ghcr.io/example/python:3.12",
                       "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}}],
        "warmPools": [{"name": "python", "template": "python",
                       **(pool or {"slo": {"claimRate": "60/min", "readyTime": "8s", "hitRatio": 0.99}})}],
        "monitoring": {"enabled": True, **(monitoring or {})},
    }


def spec(version: str = "v0.5.6", monitoring: dict[str, Any] | None = None, **pool: Any) -> StackSpec:
    return spec_from_config(config(version, monitoring, **pool))


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


def all_rules(stack: StackSpec) -> list[dict[str, Any]]:
    return [r for g in rule_groups(monitoring_scope(stack)) for r in g["rules"]]


# --- PromQL names: what a query reads -----------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
             "inf", "nan"}


def series_names(expr: str) -> set[str]:
    """The metric and recording-rule names a PromQL expression reads (not functions, labels
    or keywords): strings, label matchers, ranges and grouping lists are cut out first."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?|\{\{.*?\}\}", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def test_series_names_sees_metrics_and_skips_functions_labels_and_keywords() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b",le=~"2000(\\\\.0)?"}[5m]))) / 1000 '
            'or on() vector(0) and warm_pool:claims:rate5m{namespace="n"} > bool 1e3')
    assert series_names(expr) == {"x_bucket", "warm_pool:claims:rate5m"}


# --- the objects ----------------------------------------------------------------------------

def test_dev_renders_no_monitoring_and_staging_and_prod_do(loader: UpstreamLoader) -> None:
    kinds = {name: {m["kind"] for m in render_stack(load_stack(name), loader)} for name in ("dev", "staging", "prod")}
    assert not kinds["dev"] & {"ServiceMonitor", "PrometheusRule"}
    for name in ("staging", "prod"):
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds[name], name
    dashboards = [m for m in render_stack(load_stack("prod"), loader) if m["kind"] == "ConfigMap"
                  and m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == 1


@pytest.mark.parametrize("version", ["v0.4.6", "v0.5.6"])
@pytest.mark.parametrize("stack", ["staging", "prod", "prod-us"])
def test_objects_validate_against_the_prometheus_operator_crds(stack: str, version: str) -> None:
    from .conftest import stack_config

    raw = stack_config(stack)
    raw["agentSandbox"] = {**raw.get("agentSandbox", {}), "version": version}
    manifests = build_monitoring(monitoring_scope(spec_from_config(raw)))
    assert {m["kind"] for m in manifests} == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert {m["kind"]: validation_errors(m, version) for m in manifests} == {
        "ServiceMonitor": [], "PrometheusRule": [], "ConfigMap": []}


def test_schema_validation_catches_a_bad_rule() -> None:
    rule = by_kind(build_monitoring(monitoring_scope(spec())))["PrometheusRule"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    rule["spec"]["groups"][0]["rules"][0]["recrod"] = "typo"
    errors = validation_errors(rule, "v0.5.6")
    assert any(e.startswith('spec.groups[0].rules[0].for: "five minutes" does not match') for e in errors), errors
    assert "spec.groups[0].rules[0].recrod: unknown field" in errors, errors


@pytest.mark.parametrize("version", ["v0.4.6", "v0.5.6"])
def test_service_monitor_selects_the_controller_service_the_stack_installs(loader: UpstreamLoader, version: str) -> None:
    raw = config(version)
    manifests = render_stack(spec_from_config(raw), loader)
    monitor = by_kind(manifests)["ServiceMonitor"]
    service = next(m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"] == CONTROLLER_SERVICE)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    assert port["port"] == 8080 and endpoint["scheme"] == "http"
    # The claim counter's own namespace label must survive the scrape (else: exported_namespace).
    assert endpoint["honorLabels"] is True


def test_labels_reach_the_objects_for_the_prometheus_selectors() -> None:
    manifests = by_kind(build_monitoring(monitoring_scope(spec(monitoring={"labels": {"release": "kube-prometheus-stack"}}))))
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert manifests[kind]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_required_crds_name_the_prometheus_operator_only_when_monitoring_is_on() -> None:
    assert required_crds(spec())[PROMETHEUS_OPERATOR] == ["prometheusrules.monitoring.coreos.com",
                                                          "servicemonitors.monitoring.coreos.com"]
    assert PROMETHEUS_OPERATOR not in required_crds(spec(monitoring={"enabled": False}))


def test_operator_objects_wait_for_the_crd_lookups_and_the_dashboard_does_not(loader: UpstreamLoader) -> None:
    registered = run_under_mocks(lambda: deploy(spec(), loader))
    lookups = {r.read_id: r.urn for r in registered if r.read_id}
    assert set(lookups) == {"prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"}
    for kind in ("PrometheusRule", "ServiceMonitor"):
        resource = next(r for r in registered if r.type == f"kubernetes:monitoring.coreos.com/v1:{kind}")
        assert set(lookups.values()) <= set(resource.dependencies), kind
    config_map = next(r for r in registered if r.type == "kubernetes:core/v1:ConfigMap" and "dashboard" in r.urn)
    assert not set(lookups.values()) & set(config_map.dependencies)


def test_render_only_stacks_look_up_no_crds(loader: UpstreamLoader, tmp_path: Path) -> None:
    """Rendering to a directory has no cluster to read: a lookup would fail the run (as it did
    for staging and prod under the real engine), so none is made; the objects are rendered."""
    raw = config("v0.5.6", None)
    raw["cluster"].update(provider={"renderYamlToDirectory": str(tmp_path / "out")}, waitForWorkloads=False)
    registered = run_under_mocks(lambda: deploy(spec_from_config(raw), loader))
    assert [r.read_id for r in registered if r.read_id] == []
    assert {"ServiceMonitor", "PrometheusRule"} <= {r.type.rpartition(":")[2] for r in registered}


def test_a_cluster_without_the_prometheus_operator_stops_the_program_naming_a_crd(loader: UpstreamLoader) -> None:
    stack = spec()
    crds = {"sandboxes.agents.x-k8s.io", "sandboxtemplates.extensions.agents.x-k8s.io",
            "sandboxclaims.extensions.agents.x-k8s.io", "sandboxwarmpools.extensions.agents.x-k8s.io"}
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)  # the failed lookup's future is expected to go unretrieved
    try:
        with pytest.raises(Exception, match=r"resource '(prometheusrules|servicemonitors)\.monitoring\.coreos\.com' "
                                            r"does not exist"):
            run_under_mocks(lambda: deploy(stack, loader), resource_mocks=ClusterWithCrds(crds))
        gc.collect()
    finally:
        asyncio_log.setLevel(level)


# --- selectors per release -------------------------------------------------------------------

def test_v0_5_6_selects_a_pool_by_name_and_its_ready_sandboxes_by_owner() -> None:
    exprs = " ".join(r["expr"] for r in all_rules(spec("v0.5.6")))
    assert 'agent_sandbox_claim_creation_total{namespace="agents",warmpool_name="python"}' in exprs
    assert 'owned_by="SandboxWarmPool"' in exprs
    assert "WarmPoolEmpty" in {r.get("alert") for r in all_rules(spec("v0.5.6"))}


def test_v0_4_6_counts_cold_claims_recorded_with_pool_none_and_has_no_owner_label() -> None:
    rules = all_rules(spec("v0.4.6"))
    exprs = " ".join(r["expr"] for r in rules)
    assert 'agent_sandbox_claim_creation_total{namespace="agents",sandbox_template="python",' \
           'warmpool_name=~"python|none"}' in exprs
    assert "owned_by" not in exprs and "created_by" not in exprs and metrics.CLIENT_LATENCY not in exprs
    assert "WarmPoolEmpty" not in {r.get("alert") for r in rules}  # v0.4.6 cannot tell a pool's own sandboxes
    panels = json.dumps(dashboard(monitoring_scope(spec("v0.4.6"))))
    assert metrics.CLIENT_LATENCY not in panels  # v0.4.6 has no client histogram


def test_every_rule_reads_controller_metrics_or_earlier_records() -> None:
    for version in ("v0.4.6", "v0.5.6"):
        recorded: set[str] = set()
        for group in rule_groups(monitoring_scope(load_stack("prod") if version == "v0.5.6" else spec(version))):
            for rule in group["rules"]:
                unknown = series_names(rule["expr"]) - metrics.CONTROLLER_METRICS - recorded
                assert not unknown, (rule.get("record") or rule["alert"], unknown)
            recorded |= {r["record"] for r in group["rules"] if "record" in r}


# --- thresholds ---------------------------------------------------------------------------------

def test_thresholds_follow_the_pools_target_and_the_slo_window() -> None:
    def page(stack: StackSpec) -> str:
        return next(r["expr"] for r in all_rules(stack) if r.get("labels", {}).get("slo_severity") == "page")

    # 2 % of a 30-day budget in 1h: 14.4x; of 1 % -> 0.144, of 0.1 % -> 0.0144; a 28-day window 13.44x.
    assert "> 0.144 and" in page(spec())
    assert "> 0.0144 and" in page(spec(slo={"claimRate": "60/min", "readyTime": "8s", "hitRatio": 0.999}))
    assert "> 0.1344 and" in page(spec(monitoring={"sloWindow": "28d"}))
    assert "14.4" not in page(spec(monitoring={"sloWindow": "28d"}))


def test_compressed_windows_keep_the_thresholds() -> None:
    def thresholds(scale: float) -> list[str]:
        return [re.sub(r"rate\w+|\* \d+", "", r["expr"]) for r in all_rules_scaled(spec(), scale)
                if r.get("alert") == "WarmPoolErrorBudgetBurn"]

    assert thresholds(1 / 30) == thresholds(1.0)
    assert "> 0.144 and" in thresholds(1 / 30)[0]


def all_rules_scaled(stack: StackSpec, scale: float) -> list[dict[str, Any]]:
    return [r for g in rule_groups(monitoring_scope(stack), scale) for r in g["rules"]]


def test_one_miss_can_never_fire_a_burn_alert_on_its_own() -> None:
    for budget in (0.1, 0.01, 0.001, 0.0001):
        for alert in burn_alerts(budget, 30 * 86400, min_claims=1):
            # One miss among the fewest claims that may alert is at most the threshold (the rule is `>`).
            assert 1 / alert.min_claims <= alert.threshold or alert.threshold >= 1, (budget, alert)


def test_fixed_pools_get_their_sli_and_the_empty_pool_alert_but_no_burn_alerts() -> None:
    rules = all_rules(spec(replicas=3))
    assert {r["alert"] for r in rules if "alert" in r} == {"WarmPoolEmpty", "AgentSandboxControllerDown",
                                                          "AgentSandboxReconcileErrors"}
    assert "warm_pool:claim_misses:ratio_rate5m" in {r.get("record") for r in rules}


# --- runbooks and dashboard ------------------------------------------------------------------

def test_every_alert_links_to_its_runbook_section() -> None:
    if not DOCS.exists():
        pytest.fail("docs/monitoring.md is missing")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", DOCS.read_text(), re.M)}
    alerts = [r for s in ("v0.4.6", "v0.5.6") for r in all_rules(spec(s)) if "alert" in r]
    alerts += [r for r in all_rules(spec(slo={"claimRate": "30/min", "readyTime": "8s", "p99ClaimLatency": "2s"}))
               if "alert" in r]
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base.endswith("/docs/monitoring.md") and anchor in headings, (rule["alert"], url)


def test_dashboard_queries_read_only_recording_rules_and_controller_metrics() -> None:
    for stack in (load_stack("prod"), spec("v0.4.6"), spec(slo={"claimRate": "30/min", "readyTime": "8s",
                                                                 "p99ClaimLatency": "2s"})):
        allowed = rule_names(monitoring_scope(stack)) | metrics.CONTROLLER_METRICS
        panels = [p for p in dashboard(monitoring_scope(stack))["panels"] if p["type"] != "row"]
        assert panels
        titles = " ".join(p["title"] for p in panels)
        for needed in ("hit ratio vs target", "claim rate vs sized rate", "claim latency", "ready sandboxes"):
            assert needed in titles
        for panel in panels:
            for target in panel["targets"]:
                names = series_names(target["expr"])
                assert names - allowed == set(), (panel["title"], target["expr"])


def test_the_dashboard_check_catches_a_misspelled_metric() -> None:
    allowed = rule_names(monitoring_scope(spec())) | metrics.CONTROLLER_METRICS
    assert series_names('sum(rate(agent_sandbox_claims_created_total{namespace="a"}[5m]))') - allowed


def test_dashboard_config_map_is_json_for_the_grafana_sidecar() -> None:
    config_map = by_kind(build_monitoring(monitoring_scope(spec(monitoring={"dashboardNamespace": "grafana"}))))["ConfigMap"]
    assert config_map["metadata"]["namespace"] == "grafana"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(config_map["data"][DASHBOARD_KEY])
    assert board["title"] == "Warm pools: test" and board["panels"]


# --- bad config ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("monitoring", "message"), [
    ({"sloWindow": "2w"}, "monitoring.sloWindow = '2w': must be a whole number of days or hours"),
    ({"sloWindow": "400d"}, "monitoring.sloWindow = '400d': must be between 1d and 90d"),
    ({"minClaims": 0}, "monitoring.minClaims = 0: input should be greater than or equal to 1"),
    ({"scrapeInterval": "30"}, "monitoring.scrapeInterval = '30': must be a Prometheus duration"),
    ({"runbookUrl": "docs/monitoring.md"}, "monitoring.runbookUrl"),
    ({"enable": True}, "monitoring.enable: unknown key"),
])
def test_bad_monitoring_config_is_one_clear_error(monitoring: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        spec(monitoring=monitoring)
    assert message.lower() in str(error.value).lower(), str(error.value)
    assert "Traceback" not in str(error.value)


def test_monitoring_without_agent_sandbox_is_refused() -> None:
    raw = config()
    raw["agentSandbox"]["install"] = "none"
    raw["warmPools"] = []
    raw["templates"] = []
    with pytest.raises(ConfigError, match=r"monitoring\.enabled = True: watches the agent-sandbox controller"):
        spec_from_config(raw)
