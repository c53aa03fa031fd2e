"""What an SLO-sized pool adds: its sizing record and, optionally, an autoscaler."""

from __future__ import annotations

import json
import math
from typing import Any

from ..specs.agent_sandbox import API_VERSION_BY_RELEASE
from ..specs.template import TemplateSpec
from ..specs.warm_pool import WarmPoolSpec
from .common import DOMAIN, Manifest, obj
from .metrics import pool_claims
from .sandbox_template import EXTENSIONS_GROUP, template_labels

SIZING_INPUTS = f"{DOMAIN}/sizing-inputs"
SIZING_RESULT = f"{DOMAIN}/sizing-result"
SIZING_RULE = f"{DOMAIN}/scaling-rule"
RATE_WINDOW = "2m"
# KEDA is never installed by this stack: a pool scaled by it needs this CRD in the cluster.
SCALED_OBJECT_CRD = "scaledobjects.keda.sh"
KEDA_POLLING_SECONDS = 15


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sizing_annotations(pool: WarmPoolSpec) -> dict[str, str]:
    """The SLO inputs as configured and what the model made of them (none for a fixed pool)."""
    if pool.slo is None:
        return {}
    result: dict[str, Any] = {"model": "erlang-b", **pool.slo.sizing.summary()}
    plan = pool.slo.autoscaling_plan
    if plan is not None:
        result |= {"min_replicas": plan.min_replicas, "max_replicas": plan.max_replicas}
    return {SIZING_INPUTS: _json(pool.slo.annotations()), SIZING_RESULT: _json(result)}


def _quantity(value: float) -> str:
    """A Kubernetes quantity no larger than `value` (rounding down asks for more replicas)."""
    if value >= 0.1:
        return f"{math.floor(value * 1000)}m"
    return f"{math.floor(value * 1_000_000)}u"


def _round_up(value: float, digits: int = 4) -> str:
    return f"{math.ceil(value * 10**digits) / 10**digits:g}"


def _round_down(value: float, digits: int = 4) -> str:
    return f"{math.floor(value * 10**digits) / 10**digits:g}"


def release_of(api_version: str) -> str:
    """The agent-sandbox release whose CRs this API version is written for (one each)."""
    return next(release for release, version in API_VERSION_BY_RELEASE.items() if version == api_version)


def claim_rate_query(namespace: str, pool: str, template: str, release: str) -> str:
    """PromQL: the pool's claims per second, warm and cold alike. On v0.4.6 a cold claim is
    counted with warmpool_name="none", so selecting by the pool's name alone saw only warm
    hits: exactly when the pool runs short the autoscaler saw the demand fall."""
    return f"sum(rate({pool_claims(release, namespace, pool, template)}[{RATE_WINDOW}]))"


def build_pool_autoscaler(pool: WarmPoolSpec, template: TemplateSpec, api_version: str) -> list[Manifest]:
    """An HPA or KEDA ScaledObject on the pool's scale subresource, or nothing."""
    if pool.slo is None or pool.slo.autoscaling is None or pool.slo.autoscaling_plan is None:
        return []
    settings, plan = pool.slo.autoscaling, pool.slo.autoscaling_plan
    namespace = template.tenant
    labels = {**template_labels(template), f"{DOMAIN}/warm-pool": pool.name}
    target_ref = {"apiVersion": f"{EXTENSIONS_GROUP}/{api_version}", "kind": "SandboxWarmPool", "name": pool.name}
    if settings.engine == "hpa":
        return [obj(
            "autoscaling/v2", "HorizontalPodAutoscaler", pool.name, namespace, labels,
            annotations={SIZING_RULE: f"replicas = ceil(claims per second / {plan.per_replica_rate:.6g})"},
            spec={
                "scaleTargetRef": target_ref,
                "minReplicas": plan.min_replicas,
                "maxReplicas": plan.max_replicas,
                "metrics": [{
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": settings.metric_name,
                            "selector": {"matchLabels": {"namespace": namespace, "warmpool_name": pool.name}},
                        },
                        "target": {"type": "AverageValue", "averageValue": _quantity(plan.per_replica_rate)},
                    },
                }],
            },
        )]
    rate = claim_rate_query(namespace, pool.name, template.name, release_of(api_version))
    load = f"({rate} * {plan.ready_mean:g})"
    beta = _round_up(plan.beta)
    trigger: dict[str, Any] = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": settings.prometheus_address,
            # Square-root staffing fitted to the sizing model: A + beta * sqrt(A), A = rate x ready time.
            "query": f"({load} + {beta} * sqrt({load})) or vector(0)",
            "threshold": _round_down(plan.threshold),
        },
    }
    if settings.authentication_ref:
        trigger["authenticationRef"] = {"name": settings.authentication_ref}
    return [obj(
        "keda.sh/v1alpha1", "ScaledObject", pool.name, namespace, labels,
        annotations={SIZING_RULE: f"replicas = ceil((A + {beta} * sqrt(A)) / {_round_down(plan.threshold)}), "
                                  f"A = claims per second x {plan.ready_mean:g}s"},
        spec={
            "scaleTargetRef": target_ref,
            "minReplicaCount": plan.min_replicas,
            "maxReplicaCount": plan.max_replicas,
            "pollingInterval": KEDA_POLLING_SECONDS,
            "triggers": [trigger],
        },
    )]
