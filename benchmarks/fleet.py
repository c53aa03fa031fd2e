"""A synthetic fleet: N clusters, each with several tenants, templates and warm pools
(fixed, SLO-sized, profile-sized, HPA- and KEDA-autoscaled)."""

from __future__ import annotations

from typing import Any

TENANTS_PER_CLUSTER = 3
TEMPLATES_PER_TENANT = 2
ENVIRONMENTS = ("dev", "staging", "prod")
PROFILE = ["4/min"] * 7 + ["40/min"] * 10 + ["12/min"] * 7


def _pool(name: str, variant: int) -> dict[str, Any]:
    slo: dict[str, Any] = {"claimRate": f"{10 + 5 * variant}/min", "readyTime": "8s", "hitRatio": 0.99}
    if variant == 0:
        return {"name": name, "template": name, "replicas": 3}
    if variant == 2:
        slo = {"hourlyClaimRates": PROFILE, "readyTime": "12s", "p99ClaimLatency": "2s"}
    if variant == 3:
        slo["autoscaling"] = {"engine": "hpa", "minClaimRate": "2/min", "maxClaimRate": "60/min"}
    if variant == 4:
        slo["autoscaling"] = {"engine": "keda", "minClaimRate": "2/min", "maxClaimRate": "60/min",
                              "prometheusAddress": "http://prometheus.monitoring.svc:9090"}
    return {"name": name, "template": name, "slo": slo, "waitForReady": True}


def cluster_config(index: int) -> dict[str, Any]:
    """The project config (keys without the `sandbox-infra:` prefix) of one cluster."""
    tenants, templates, pools = [], [], []
    for t in range(TENANTS_PER_CLUSTER):
        tenant = f"agents-{t}"
        tenants.append({
            "name": tenant,
            "gatewayServiceAccounts": [{"name": "agent-gateway"}, {"name": "ci-gateway", "namespace": "ci"}],
            "quota": {"requestsCpu": "64", "requestsMemory": "128Gi", "limitsCpu": "128", "limitsMemory": "256Gi",
                      "pods": 400},
        })
        for k in range(TEMPLATES_PER_TENANT):
            name = f"{tenant}-runtime-{k}"
            templates.append({
                "name": name,
                "tenant": tenant,
                "image": f"registry.example.com/agents/runtime-{k}:1.{index % 7}.{t}",
                "runtimeClassName": "gvisor",
                "env": [{"name": "LOG_LEVEL", "value": "info"},
                        {"name": "API_TOKEN", "secretKeyRef": {"name": "agent-token", "key": "token"}}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
                "network": {"egress": {"cidrs": ["0.0.0.0/0", "10.0.0.0/8"], "ports": [{"port": 443}],
                                       "domains": ["https://pypi.org", "files.pythonhosted.org:443"]},
                            "ingress": {"fromNamespaces": ["gateway"]}},
            })
            pools.append(_pool(name, (t * TEMPLATES_PER_TENANT + k) % 5))
    return {
        "cluster": {"name": f"bench-{index:03d}", "environment": ENVIRONMENTS[index % 3],
                    "provider": {"context": f"bench-{index:03d}"}},
        "agentSandbox": {"version": "v0.5.6" if index % 4 else "v0.4.6"},
        "policy": {"maxWarmPoolReplicas": 100, "requireRuntimeClass": True},
        "tenants": tenants,
        "templates": templates,
        "warmPools": pools,
    }


def fleet(clusters: int) -> list[dict[str, Any]]:
    return [cluster_config(i) for i in range(clusters)]
