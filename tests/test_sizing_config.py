"""`replicas` or `slo` on a warm pool: validation, rendered pool and autoscaler, Pulumi wiring."""

from __future__ import annotations

import copy
import gc
import json
import logging
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.errors import ConfigError
from components.manifests.sizing import SCALED_OBJECT_CRD, SIZING_INPUTS, SIZING_RESULT
from components.manifests.stack import render_stack
from components.sizing.model import HitRatioTarget, ReadyTime, size_pool
from components.specs import load_stack, spec_from_config
from components.specs.stack import StackSpec
from components.stack import deploy
from components.upstream import UpstreamLoader, upstream_dir

from .pulumi_harness import ClusterWithCrds, run_under_mocks

SLO = {"claimRate": "30/min", "readyTime": "8s", "hitRatio": 0.99}
HPA = {"engine": "hpa", "minClaimRate": "5/min", "maxClaimRate": "120/min"}
KEDA = {**HPA, "engine": "keda", "prometheusAddress": "http://prometheus.monitoring.svc:9090",
        "authenticationRef": "prometheus-auth"}


def config(pool: dict[str, Any], version: str = "v0.5.6", cap: int = 100) -> dict[str, Any]:
    return {
        "cluster": {"name": "test", "environment": "dev"},
        "agentSandbox": {"version": version},
        "policy": {"maxWarmPoolReplicas": cap},
        "tenants": [{"name": "agents"}],
        "templates": [{
            "name": "python", "tenant": "agents", "image": "ghcr.io/example/python:3.12",
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        }],
        "warmPools": [{"name": "python", "template": "python", **pool}],
    }


@pytest.fixture(scope="module")
def loader(tmp_path_factory: pytest.TempPathFactory) -> UpstreamLoader:
    mirror = upstream_dir()
    if not (mirror / "agent-sandbox").is_dir():
        pytest.skip(f"pinned upstream mirror not found at {mirror} (set UPSTREAM_DIR to ../shared/upstream)")
    return UpstreamLoader(mirror=mirror, cache=tmp_path_factory.mktemp("cache"), allow_download=False)


def render(pool: dict[str, Any], loader: UpstreamLoader, version: str = "v0.5.6") -> dict[str, dict[str, Any]]:
    manifests = render_stack(spec_from_config(config(pool, version)), loader)
    return {m["kind"]: m for m in manifests if m["kind"] in ("SandboxWarmPool", "HorizontalPodAutoscaler", "ScaledObject")}


def problems(pool: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as error:
        spec_from_config(config(pool, **kwargs))
    return str(error.value)


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ({}, "sandbox-infra:warmPools[0]: set exactly one of replicas (a fixed pool size) or slo"),
        ({"replicas": 3, "slo": SLO}, "sandbox-infra:warmPools[0]: sets both replicas (3) and slo: give one"),
    ],
)
def test_replicas_xor_slo(pool: dict[str, Any], expected: str) -> None:
    message = problems(pool)
    assert expected in message
    assert message.count("\n") == 1  # one problem, one line


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        ({**SLO, "claimRate": 30}, "warmPools[0].slo.claimRate = 30: must be a rate such as 30/min"),
        ({**SLO, "claimRate": "0/min"}, "warmPools[0].slo.claimRate = '0/min': must be greater than zero"),
        ({**SLO, "readyTime": "8"}, "warmPools[0].slo.readyTime = '8': must be a duration such as 8s"),
        ({**SLO, "hitRatio": 1}, "warmPools[0].slo.hitRatio = 1: input should be less than 1"),
        ({"claimRate": "30/min", "readyTime": "8s"}, "warmPools[0].slo: set exactly one target: hitRatio"),
        ({**SLO, "p99ClaimLatency": "2s"}, "warmPools[0].slo: set exactly one target"),
        ({"claimRate": "30/min", "readyTime": "8s", "p99ClaimLatency": "50ms"},
         "warmPools[0].slo.p99ClaimLatency = '50ms': must exceed the ~0.1s a warm claim takes"),
        ({**SLO, "hourlyClaimRates": ["1/min"] * 24}, "warmPools[0].slo: set exactly one of claimRate"),
        ({"hourlyClaimRates": ["1/min"] * 23, "readyTime": "8s", "hitRatio": 0.99},
         "warmPools[0].slo.hourlyClaimRates"),
        ({**SLO, "claimRate": "6000/min", "readyTime": "2m"},
         "warmPools[0].slo: hit ratio >= 0.99 needs more than 1000 replicas"),
        ({**SLO, "autoscaling": {"engine": "keda", "minClaimRate": "1/min", "maxClaimRate": "9/min"}},
         "warmPools[0].slo.autoscaling: engine keda needs prometheusAddress"),
        ({**SLO, "autoscaling": {**HPA, "prometheusAddress": "http://p:9090"}},
         "warmPools[0].slo.autoscaling: prometheusAddress and authenticationRef apply to engine keda only"),
        ({**SLO, "autoscaling": {"engine": "hpa"}}, "warmPools[0].slo: autoscaling needs minClaimRate and maxClaimRate"),
        ({**SLO, "autoscaling": {**HPA, "minClaimRate": "200/min"}},
         "autoscaling.minClaimRate (200/min) must be below maxClaimRate (120/min)"),
        ({**SLO, "autoscaling": {**HPA, "engine": "vpa"}}, "warmPools[0].slo.autoscaling.engine = 'vpa': input should be 'hpa' or 'keda'"),
        ({**SLO, "claimsPerMinute": 30}, "warmPools[0].slo.claimsPerMinute: unknown key; allowed keys here: claimRate,"),
    ],
)
def test_bad_slo_is_named(slo: dict[str, Any], expected: str) -> None:
    assert expected in problems({"slo": slo})


def test_slo_pools_respect_the_stacks_cap() -> None:
    # 30/min x 8s at 0.99 needs 10 replicas.
    assert "warmPools[0].slo = 10: exceeds the stack's cap policy.maxWarmPoolReplicas=8" in problems({"slo": SLO}, cap=8)
    # The autoscaler's ceiling counts, not just the nominal size (120/min needs 25).
    message = problems({"slo": {**SLO, "autoscaling": HPA}}, cap=20)
    assert "warmPools[0].slo = 25: exceeds the stack's cap" in message


# --- rendered pool ------------------------------------------------------------------


def test_slo_pool_renders_computed_replicas_and_records_the_sizing(loader: UpstreamLoader) -> None:
    pool = render({"slo": SLO, "waitForReady": True}, loader)["SandboxWarmPool"]
    sizing = size_pool([0.5], ReadyTime(8), HitRatioTarget(0.99))
    assert pool["spec"]["replicas"] == sizing.replicas == 10
    annotations = pool["metadata"]["annotations"]
    assert json.loads(annotations[SIZING_INPUTS]) == SLO
    assert json.loads(annotations[SIZING_RESULT]) == {"model": "erlang-b", **sizing.summary()}
    assert annotations["pulumi.com/skipAwait"] == "true"  # PoolReadiness waits (tests/test_readiness.py)


def test_fixed_pool_renders_as_before(loader: UpstreamLoader) -> None:
    pool = render({"replicas": 3}, loader)["SandboxWarmPool"]
    assert pool["spec"]["replicas"] == 3
    assert not any(key.startswith("sandbox-infra.dev/sizing") for key in pool["metadata"]["annotations"])


def test_profile_takes_autoscaling_bounds_from_its_quiet_and_busy_hours(loader: UpstreamLoader) -> None:
    hourly = ["2/min"] * 8 + ["60/min"] * 10 + ["10/min"] * 6
    slo = {"hourlyClaimRates": hourly, "readyTime": "8s", "hitRatio": 0.99, "autoscaling": {"engine": "hpa"}}
    hpa = render({"slo": slo}, loader)["HorizontalPodAutoscaler"]
    target = HitRatioTarget(0.99)
    assert hpa["spec"]["minReplicas"] == size_pool([2 / 60], ReadyTime(8), target).replicas
    assert hpa["spec"]["maxReplicas"] == size_pool([1.0], ReadyTime(8), target).replicas


def _crd_validator(version: str, kind_file: str, api: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((upstream_dir() / f"agent-sandbox/{version}/k8s/crds/{kind_file}").read_text())
    schema = next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == api)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize(("version", "api"), [("v0.4.6", "v1alpha1"), ("v0.5.6", "v1beta1")])
def test_autoscaled_pool_and_hpa_match_the_schemas(loader: UpstreamLoader, version: str, api: str) -> None:
    rendered = render({"slo": {**SLO, "autoscaling": HPA}, "waitForReady": True}, loader, version)
    pool, hpa = rendered["SandboxWarmPool"], rendered["HorizontalPodAutoscaler"]
    validator = _crd_validator(version, "extensions.agents.x-k8s.io_sandboxwarmpools.yaml", api)
    assert [e.message for e in validator.iter_errors(pool)] == []
    kubernetes_validate.validate(hpa, "1.34", strict=True)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": f"extensions.agents.x-k8s.io/{api}", "kind": "SandboxWarmPool", "name": "python",
    }
    assert pool["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_hpa_validation_would_catch_a_broken_object(loader: UpstreamLoader) -> None:
    hpa = copy.deepcopy(render({"slo": {**SLO, "autoscaling": HPA}}, loader)["HorizontalPodAutoscaler"])
    hpa["spec"]["metrics"][0]["external"]["target"]["type"] = "Averagevalue"
    hpa["spec"]["minReplica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, "1.34", strict=True)


def _needs(low: float, high: float) -> list[tuple[float, int]]:
    rates = [low + (high - low) * step / 400 for step in range(401)]
    return [(r, size_pool([r], ReadyTime(8), HitRatioTarget(0.99)).replicas) for r in rates]


def test_rendered_hpa_rule_covers_the_model_between_the_bounds(loader: UpstreamLoader) -> None:
    spec = render({"slo": {**SLO, "autoscaling": HPA}}, loader)["HorizontalPodAutoscaler"]["spec"]
    metric = spec["metrics"][0]["external"]
    assert metric["metric"]["selector"]["matchLabels"] == {"namespace": "agents", "warmpool_name": "python"}
    number, suffix = re.fullmatch(r"([0-9]+)(m|u)", metric["target"]["averageValue"]).groups()
    per_replica = int(number) * {"m": 1e-3, "u": 1e-6}[suffix]
    target = HitRatioTarget(0.99)
    assert (spec["minReplicas"], spec["maxReplicas"]) == (
        size_pool([5 / 60], ReadyTime(8), target).replicas, size_pool([2.0], ReadyTime(8), target).replicas,
    )
    for rate, need in _needs(5 / 60, 2.0):
        # What the HPA computes (and may stay 10 % below, its default tolerance), within its bounds.
        settles = math.ceil(rate / per_replica / 1.1 - 1e-9)
        assert min(max(settles, spec["minReplicas"]), spec["maxReplicas"]) >= need, rate


def test_rendered_keda_rule_covers_the_model_between_the_bounds(loader: UpstreamLoader) -> None:
    scaled = render({"slo": {**SLO, "autoscaling": KEDA}}, loader)["ScaledObject"]
    # No KEDA schema is pinned in ../shared/upstream, so the structure is checked by hand
    # against the keda.sh/v1alpha1 ScaledObject fields we rely on.
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert set(spec) == {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "triggers"}
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["authenticationRef"] == {"name": "prometheus-auth"}
    assert trigger["metadata"]["serverAddress"] == KEDA["prometheusAddress"]
    query, threshold = trigger["metadata"]["query"], Decimal(trigger["metadata"]["threshold"])
    assert 'agent_sandbox_claim_creation_total{namespace="agents",warmpool_name="python"}[2m]' in query
    match = re.fullmatch(r"\(\((?P<rate>.+) \* 8\) \+ (?P<beta>[0-9.]+) \* sqrt\(\((?P=rate) \* 8\)\)\) or vector\(0\)", query)
    assert match, query
    beta = float(match["beta"])
    for rate, need in _needs(5 / 60, 2.0):
        load = rate * 8
        # KEDA's HPA: ceil(value / threshold), and it may stay 10 % below that.
        settles = math.ceil((load + beta * math.sqrt(load)) / float(threshold) / 1.1 - 1e-9)
        assert min(max(settles, spec["minReplicaCount"]), spec["maxReplicaCount"]) >= need, rate


# --- shipped stacks and Pulumi --------------------------------------------------------


def test_prod_pool_is_sized_from_its_slo() -> None:
    spec = load_stack("prod")
    pool = next(p for p in spec.warm_pools if p.slo is not None)
    assert pool.autoscaled and pool.replicas == pool.slo.sizing.replicas
    assert pool.max_replicas <= spec.policy.max_warm_pool_replicas


def test_prod_us_overrides_the_layers_claim_rates_by_pool_name() -> None:
    prod, prod_us = (next(p for p in load_stack(s).warm_pools if p.name == "python") for s in ("prod", "prod-us"))
    assert prod.slo is not None and prod_us.slo is not None and prod_us.fixed_replicas is None
    assert prod_us.slo.ready_time == prod.slo.ready_time and prod_us.slo.hit_ratio == prod.slo.hit_ratio  # from the layer
    assert prod_us.slo.rates[0] < prod.slo.rates[0] and prod_us.replicas < prod.replicas


def _layered(tmp_path: Path, cluster_pool: dict[str, Any]) -> Path:
    base = config({"slo": {**SLO, "autoscaling": HPA}})
    del base["cluster"]
    files = {"layers/project.yaml": base,
             "Pulumi.c.yaml": {"cluster": {"name": "c", "environment": "dev"}, "warmPools": [{"name": "python", **cluster_pool}]}}
    for name, values in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(yaml.safe_dump({"config": {f"sandbox-infra:{k}": v for k, v in values.items()}}))
    return tmp_path


def test_a_cluster_resizes_a_layers_slo_pool_by_its_rates(tmp_path: Path) -> None:
    pool = load_stack("c", _layered(tmp_path, {"slo": {"claimRate": "120/min"}})).warm_pools[0]
    assert pool.slo is not None and pool.slo.autoscaling is not None  # the rest of the layer's slo is kept
    assert pool.slo.sizing.replicas == size_pool([2.0], ReadyTime(8), HitRatioTarget(0.99)).replicas


def test_a_cluster_replacing_a_layers_slo_by_replicas_must_drop_the_slo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_stack("c", _layered(tmp_path, {"replicas": 4}))
    assert "warmPools[0]: sets both replicas (4) and slo" in str(error.value) and "slo: null" in str(error.value)
    pool = load_stack("c", _layered(tmp_path, {"replicas": 4, "slo": None})).warm_pools[0]
    assert pool.slo is None and pool.replicas == 4 and not pool.autoscaled


def test_component_registers_the_autoscaler_after_the_pool(loader: UpstreamLoader) -> None:
    spec: StackSpec = spec_from_config(config({"slo": {**SLO, "autoscaling": HPA}}))
    fixed: StackSpec = spec_from_config(config({"replicas": 2}))
    registrations = run_under_mocks(lambda: deploy(spec, loader))
    component = next(r for r in registrations if r.type == "sandbox-infra:index:WarmPool")
    pool = next(r for r in registrations if r.type.endswith(":SandboxWarmPool"))
    hpa = next(r for r in registrations if r.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert pool.parent == hpa.parent == component.urn
    assert pool.urn in hpa.dependencies
    assert pool.ignore_changes == ["spec.replicas"]  # Pulumi sets the first count, the HPA the rest
    assert pool.inputs["spec"]["replicas"] == 10

    fixed_pool = next(r for r in run_under_mocks(lambda: deploy(fixed, loader)) if r.type.endswith(":SandboxWarmPool"))
    assert fixed_pool.ignore_changes == []


def test_keda_scaled_objects_wait_for_a_lookup_of_kedas_crd(loader: UpstreamLoader) -> None:
    keda = run_under_mocks(lambda: deploy(spec_from_config(config({"slo": {**SLO, "autoscaling": KEDA}})), loader))
    (lookup,) = [r for r in keda if r.read_id]
    assert lookup.read_id == SCALED_OBJECT_CRD
    scaled = next(r for r in keda if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert lookup.urn in scaled.dependencies
    pool = next(r for r in keda if r.type.endswith(":SandboxWarmPool"))
    assert lookup.urn not in pool.dependencies  # the pool itself does not need KEDA
    hpa = run_under_mocks(lambda: deploy(spec_from_config(config({"slo": {**SLO, "autoscaling": HPA}})), loader))
    assert [r.read_id for r in hpa if r.read_id] == []  # the HPA is built in: nothing to look up


def test_a_cluster_without_keda_stops_the_program_naming_its_crd(loader: UpstreamLoader) -> None:
    spec = spec_from_config(config({"slo": {**SLO, "autoscaling": KEDA}}))
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)  # the failed lookup's future is expected to go unretrieved
    try:
        with pytest.raises(Exception, match=re.escape(f"resource '{SCALED_OBJECT_CRD}' does not exist")):
            run_under_mocks(lambda: deploy(spec, loader), resource_mocks=ClusterWithCrds(set()))
        gc.collect()
    finally:
        asyncio_log.setLevel(level)
