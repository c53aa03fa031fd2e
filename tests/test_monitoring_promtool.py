"""The generated rules, run by Prometheus's own rule engine (`promtool test rules`) on series
the sizing model predicts: a pool at its design load stays quiet, the same pool at twice the
load or with half the replicas pages within the alert window, the empty-pool alert fires and
clears. `promtool check rules` checks every generated rule file as written.

promtool: Debian's `prometheus` package (.ci/run installs it). The series are counters
sampled each minute whose increments are exactly the model's expectation (Erlang B), so the
outcome is deterministic.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests.graph import monitoring_scope
from components.manifests.monitoring import PoolMonitoring, build_monitoring, pools, rule_groups
from components.manifests.sizing import build_pool_autoscaler
from components.sizing.model import erlang_b
from components.specs import load_stack, spec_from_config
from components.specs.stack import StackSpec

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: install Debian's prometheus package (apt-get install prometheus)")

MINUTE = 60
NS, POOL, TEMPLATE = "agents", "python", "python"


def stack(pool: dict[str, Any], version: str = "v0.5.6", extra_pools: Iterable[dict[str, Any]] = ()) -> StackSpec:
    template = {"tenant": NS, "image": "ghcr.io/example/python:3.12",
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}
    return spec_from_config({
        "cluster": {"name": "test", "environment": "staging"},
        "agentSandbox": {"version": version},
        "policy": {"maxWarmPoolReplicas": 100},
        "tenants": [{"name": NS}],
        "templates": [{"name": TEMPLATE, **template}, {"name": "browser", **template}],
        "warmPools": [{"name": POOL, "template": TEMPLATE, **pool}, *extra_pools],
        "monitoring": {"enabled": True},
    })


def promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def rule_file(groups: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


# --- series from the model ----------------------------------------------------------------

class Counter:
    """One counter's samples, a minute apart, written in promtool's expanding notation."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.parts: list[str] = []

    def run(self, per_second: float, minutes: int) -> None:
        """`minutes` samples, each `per_second` x 60 above the one before."""
        step = per_second * MINUTE
        start = 0.0 if self.last is None else self.last + step
        self.parts.append(f"{start:.6f}+{step:.6f}x{minutes - 1}")
        self.last = start + step * (minutes - 1)

    def values(self) -> str:
        return " ".join(self.parts)


def claim_labels(version: str, launch: str, pool: str = POOL, template: str = TEMPLATE) -> str:
    """How the controller labels a claim of `pool` (see components/manifests/metrics.py)."""
    pool_label = "none" if version == "v0.4.6" and launch == "cold" else pool
    labels = {"namespace": NS, "sandbox_template": template, "launch_type": launch, "warmpool_name": pool_label,
              "pod_condition": "ready" if launch == "warm" else "not_ready"}
    if version != "v0.4.6":
        labels["created_by"] = "python-client"
    return "agent_sandbox_claim_creation_total{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def model_series(version: str, phases: list[tuple[float, int, int]], ready_mean: float,
                 decoy: bool = True) -> list[dict[str, str]]:
    """Claims of the pool over `phases` of (claims per second, replicas, minutes): each minute
    the warm and cold counters grow by the model's expectation, rate x (1 - B) and rate x B,
    B = Erlang B(replicas, rate x ready time). The decoy is another template's pool in the same
    namespace missing every claim: a selector that picked it up would page."""
    warm, cold, other = Counter(), Counter(), Counter()
    for rate, replicas, minutes in phases:
        miss = erlang_b(replicas, rate * ready_mean)
        warm.run(rate * (1 - miss), minutes)
        cold.run(rate * miss, minutes)
        other.run(rate, minutes)
    series = [{"series": claim_labels(version, "warm"), "values": warm.values()},
              {"series": claim_labels(version, "cold"), "values": cold.values()}]
    if decoy:
        series.append({"series": claim_labels(version, "cold", "browser", "browser"), "values": other.values()})
    return series


def without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """promtool compares an alert's annotations exactly when a test names them; these tests
    judge when alerts fire, so the copy they run drops the (templated) annotations.
    `test_generated_rule_files_pass_promtool_check` checks the real file, templates included."""
    groups = copy.deepcopy(groups)
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return groups


def run_tests(tmp_path: Path, groups: list[dict[str, Any]], series: list[dict[str, str]],
              alerts: list[dict[str, Any]], rule_tests: list[dict[str, Any]] | None = None,
              evaluation_interval: str = "1m") -> None:
    """Samples a minute apart; rules evaluated every `evaluation_interval` (5m keeps the
    tests over days of series quick; `for` clauses then count in 5-minute steps)."""
    rule_file(without_annotations(groups), tmp_path / "rules.yaml")
    test = {"interval": "1m", "input_series": series, "alert_rule_test": alerts}
    if rule_tests:
        test["promql_expr_test"] = rule_tests
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": evaluation_interval, "tests": [test]}, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def page(pool: PoolMonitoring) -> dict[str, str]:
    return {**pool.labels, "severity": "critical", "slo_severity": "page"}


def at(minutes: int, name: str, *expected: dict[str, str]) -> dict[str, Any]:
    """Exactly these alerts of `name` fire at `minutes` (none: quiet)."""
    return {"eval_time": f"{minutes}m", "alertname": name, "exp_alerts": [{"exp_labels": e} for e in expected]}


def firing(minutes: int, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """An alert of `name` with `labels` fires at `minutes`, whatever else fires beside it."""
    selector = ",".join(f'{k}="{v}"' for k, v in {"alertname": name, "alertstate": "firing", **labels}.items())
    return {"expr": f"ALERTS{{{selector}}}", "eval_time": f"{minutes}m",
            "exp_samples": [{"labels": f"ALERTS{{{selector}}}", "value": 1}]}


BURN_ALERT = "WarmPoolErrorBudgetBurn"
SLOS = {
    "hit ratio 0.99": {"claimRate": "60/min", "readyTime": "8s", "hitRatio": 0.99},
    "hit ratio 0.999": {"claimRate": "120/min", "readyTime": "10s", "hitRatio": 0.999},
    "p99 latency 2s": {"claimRate": "30/min", "readyTime": "8s", "readyTimeCv": 0.5, "p99ClaimLatency": "2s"},
}


# --- the tests ----------------------------------------------------------------------------

def test_generated_rule_files_pass_promtool_check(tmp_path: Path) -> None:
    specs = {name: load_stack(name) for name in ("staging", "prod", "prod-us")}
    specs |= {f"{v} {name}": stack(slo and {"slo": slo}, v) for name, slo in SLOS.items() for v in ("v0.4.6", "v0.5.6")}
    specs["fixed replicas"] = stack({"replicas": 3})
    paths = []
    for name, spec in specs.items():
        (rule,) = [m for m in build_monitoring(monitoring_scope(spec)) if m["kind"] == "PrometheusRule"]
        paths.append(rule_file(rule["spec"]["groups"], tmp_path / f"{name.replace(' ', '-')}.yaml"))
    result = promtool("check", "rules", *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(paths)


# Both releases' selectors on one SLO, every SLO on the current release.
DESIGN_CASES = [("hit ratio 0.99", "v0.4.6"), *((slo, "v0.5.6") for slo in sorted(SLOS))]
SLOW_PAGE_WINDOW = 6 * 60  # minutes: the longer page window; a 2x load may burn slower than the 1h page needs


@pytest.mark.parametrize(("slo", "version"), DESIGN_CASES)
def test_pool_at_design_load_is_quiet_and_pages_at_twice_the_load(tmp_path: Path, slo: str, version: str) -> None:
    spec = stack({"slo": SLOS[slo]}, version)
    (pool,) = pools(monitoring_scope(spec))
    assert pool.pool.slo is not None and pool.plan is not None
    rate, replicas, ready = pool.pool.slo.rates[0], pool.pool.replicas, pool.pool.slo.ready.mean
    change = 72 * 60  # the longest alert window (the ticket's 3d) at design load must stay quiet too
    series = model_series(version, [(rate, replicas, change), (2 * rate, replicas, SLOW_PAGE_WINDOW)], ready)
    quiet = (60, 6 * 60, 24 * 60, change - 5)  # the last evaluation before the load doubles
    alerts = [at(m, BURN_ALERT) for m in quiet] + [at(m, "WarmPoolClaimRateAboveSized") for m in quiet]
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series, alerts, [firing(change + SLOW_PAGE_WINDOW, BURN_ALERT, page(pool))],
              evaluation_interval="5m")


@pytest.mark.parametrize("slo", sorted(SLOS))
def test_pool_with_half_the_replicas_pages_within_the_window(tmp_path: Path, slo: str) -> None:
    spec = stack({"slo": SLOS[slo]})
    (pool,) = pools(monitoring_scope(spec))
    assert pool.pool.slo is not None
    rate, replicas, ready = pool.pool.slo.rates[0], pool.pool.replicas, pool.pool.slo.ready.mean
    series = model_series("v0.5.6", [(rate, replicas, 6 * 60), (rate, replicas // 2, SLOW_PAGE_WINDOW)], ready)
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series, [at(6 * 60 - 5, BURN_ALERT)],
              [firing(6 * 60 + SLOW_PAGE_WINDOW, BURN_ALERT, page(pool))], evaluation_interval="5m")


def test_twice_the_sized_rate_raises_the_claim_rate_alert(tmp_path: Path) -> None:
    spec = stack({"slo": SLOS["hit ratio 0.99"]})
    (pool,) = pools(monitoring_scope(spec))
    assert pool.pool.slo is not None
    rate, replicas, ready = pool.pool.slo.rates[0], pool.pool.replicas, pool.pool.slo.ready.mean
    series = model_series("v0.5.6", [(rate, replicas, 120), (2 * rate, replicas, 120)], ready)
    # The 1h rate crosses capacity plus noise within the hour; the alert waits 5m more.
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series,
              [at(120, "WarmPoolClaimRateAboveSized"), at(240, "WarmPoolClaimRateAboveSized", {**pool.labels, "severity": "warning"})])


def test_one_miss_at_a_low_rate_does_not_page(tmp_path: Path) -> None:
    spec = stack({"slo": {"claimRate": "1/h", "readyTime": "8s", "hitRatio": 0.99}})
    warm, cold = claim_labels("v0.5.6", "warm"), claim_labels("v0.5.6", "cold")
    # Two claims in the first hour, one of them cold: a miss ratio of 1/2, far over 14.4 x 1 %.
    series = [{"series": warm, "values": "0x30 1x29 2x60"}, {"series": cold, "values": "0x50 1x69"}]
    rule_tests = [{"expr": f'warm_pool:claim_misses:ratio_rate1h{{warmpool_name="{POOL}"}} > 0.144',
                   "eval_time": "60m",
                   "exp_samples": [{"labels": f'warm_pool:claim_misses:ratio_rate1h{{namespace="{NS}",'
                                              f'warmpool_name="{POOL}"}}', "value": 0.5}]}]
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series, [at(m, BURN_ALERT) for m in (55, 60, 90, 119)], rule_tests)
    assert pools(monitoring_scope(spec))[0].plan is not None


@pytest.mark.parametrize("le", ["2000", "2000.0"])
def test_slow_claim_ratio_reads_the_bound_bucket_as_prometheus_2_and_3_write_it(tmp_path: Path, le: str) -> None:
    spec = stack({"slo": SLOS["p99 latency 2s"]})
    histogram = "agent_sandbox_claim_controller_startup_latency_ms"
    labels = f'launch_type="warm",sandbox_template="{TEMPLATE}"'
    # 10 claims a minute, 9 of them within 2 s (the 2000 ms bucket; 1000 ms below it as a decoy).
    series = [{"series": f'{histogram}_bucket{{{labels},le="1000"}}', "values": "0+5x20"},
              {"series": f'{histogram}_bucket{{{labels},le="{le}"}}', "values": "0+9x20"},
              {"series": f"{histogram}_count{{{labels}}}", "values": "0+10x20"}]
    labels = f'{{bound_ms="2000",namespace="{NS}",sandbox_template="{TEMPLATE}",warmpool_name="{POOL}"}}'
    check = {"expr": "round(warm_pool:slow_claims:ratio_rate5m, 0.0001)", "eval_time": "15m",
             "exp_samples": [{"labels": labels, "value": 0.1}]}
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series, [], [check])


def test_empty_pool_alert_fires_while_claims_arrive_and_clears_on_refill(tmp_path: Path) -> None:
    spec = stack({"replicas": 3})
    (pool,) = pools(monitoring_scope(spec))
    ready = f'agent_sandboxes{{namespace="{NS}",sandbox_template="{TEMPLATE}",owned_by="SandboxWarmPool",' \
            'ready_condition="true",expired="false",launch_type="warm",created_by="controller"}'
    # Ready for 10m, then the series vanishes (the collector emits no zero counts) for 10m, then back.
    series = [{"series": ready, "values": "3x10 stale " + "_ " * 9 + "2x10"},
              *model_series("v0.5.6", [(0.5, 3, 30)], 8.0, decoy=False)]
    empty = {**pool.labels, "severity": "critical"}
    # The alert reads the SLI group's recording rules; groups are evaluated independently, in
    # no fixed order (promtool as Prometheus), so it may see them one evaluation late: back at
    # 21m, resolved by 22m.
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series,
              [at(10, "WarmPoolEmpty"), at(12, "WarmPoolEmpty"), at(14, "WarmPoolEmpty", empty),
               at(19, "WarmPoolEmpty", empty), at(22, "WarmPoolEmpty")])


def test_an_empty_pool_without_claims_is_no_alert(tmp_path: Path) -> None:
    spec = stack({"replicas": 3})
    claims = claim_labels("v0.5.6", "warm")
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), [{"series": claims, "values": "5x40"}],
              [at(m, "WarmPoolEmpty") for m in (5, 20, 40)])


def test_cold_ready_time_above_the_configured_ready_time_alerts(tmp_path: Path) -> None:
    spec = stack({"slo": SLOS["hit ratio 0.99"]})
    (pool,) = pools(monitoring_scope(spec))
    labels = f'namespace="{NS}",launch_type="cold",sandbox_template="{TEMPLATE}"'
    # 6 cold creations a minute: 7.5s each for 2h, then 12s (readyTime is 8s).
    count, total = Counter(), Counter()
    count.run(0.1, 240)
    total.run(0.1 * 7500, 120)
    total.run(0.1 * 12000, 120)
    series = [{"series": f"agent_sandbox_creation_latency_ms_count{{{labels}}}", "values": count.values()},
              {"series": f"agent_sandbox_creation_latency_ms_sum{{{labels}}}", "values": total.values()}]
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), series,
              [at(120, "WarmPoolColdReadyTimeHigh"), at(240, "WarmPoolColdReadyTimeHigh",
                                                     {**pool.labels, "sandbox_template": TEMPLATE, "severity": "warning"})])


def test_controller_down_alerts_after_five_minutes(tmp_path: Path) -> None:
    spec = stack({"replicas": 3})
    up = 'up{job="agent-sandbox-controller",namespace="agent-sandbox-system",instance="10.0.0.1:8080"}'
    down = {"job": "agent-sandbox-controller", "namespace": "agent-sandbox-system", "severity": "critical"}
    run_tests(tmp_path, rule_groups(monitoring_scope(spec)), [{"series": up, "values": "1x10 0x20"}],
              [at(10, "AgentSandboxControllerDown"), at(14, "AgentSandboxControllerDown"),
               at(16, "AgentSandboxControllerDown", down)])


@pytest.mark.parametrize("version", ["v0.4.6", "v0.5.6"])
def test_keda_claim_rate_counts_cold_claims(tmp_path: Path, version: str) -> None:
    """The fix: on v0.4.6 a cold claim carries warmpool_name="none"; the KEDA query must still
    count it, and must not count another template's cold claims."""
    autoscaling = {"engine": "keda", "minClaimRate": "5/min", "maxClaimRate": "120/min",
                   "prometheusAddress": "http://prometheus:9090"}
    spec = stack({"slo": {**SLOS["hit ratio 0.99"], "autoscaling": autoscaling}}, version)
    pool = spec.warm_pools[0]
    (scaled,) = build_pool_autoscaler(pool, spec.template(pool.template), spec.agent_sandbox.api_version)
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    rate_query = query[query.index("sum(rate("):query.index("[2m]))") + len("[2m]))")]
    # 1 warm and 2 cold claims per second for this pool, 5 cold for another template's pool.
    series = [{"series": claim_labels(version, launch, pool_name, template), "values": f"0+{per_second * 60}x30"}
              for launch, per_second, pool_name, template in (("warm", 1, POOL, TEMPLATE), ("cold", 2, POOL, TEMPLATE),
                                                               ("cold", 5, "browser", "browser"))]
    check = {"expr": rate_query, "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": 3}]}
    run_tests(tmp_path, [], series, [], [check])
