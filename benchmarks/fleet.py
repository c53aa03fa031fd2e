"""A synthetic fleet: N clusters, each with several tenants, templates, warm pools (fixed,
SLO-sized, profile-sized, HPA- and KEDA-autoscaled), a managed KubeVirt install and VM
environments (runtimes with executionKind kubevirt-vm) next to the pod runtimes."""

from __future__ import annotations

from typing import Any

from components.specs.loader import spec_from_config
from components.specs.stack import StackSpec

TENANTS_PER_CLUSTER = 3
TEMPLATES_PER_TENANT = 2
ENVIRONMENTS = ("dev", "staging", "prod")
PROFILE = ["4/min"] * 7 + ["40/min"] * 10 + ["12/min"] * 7
# What a stack file holds for a secret offline (`pulumi config set --secret`): ciphertext only.
SEALED = {"secure": "v1:bm9uY2U=:Y2lwaGVydGV4dA=="}
CLOUD_INIT = "#cloud-config\nusers: [{name: agent, ssh_authorized_keys: []}]\n"


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


def _vm_runtime(tenant: str, index: int, engine: bool) -> dict[str, Any]:
    """A pool of warm VMs per tenant; every third cluster's first tenant also gets one single VM."""
    secret: Any = CLOUD_INIT if engine else SEALED
    return {
        "id": f"{tenant}-vm",
        "displayName": "Full-OS dev box",
        "executionKind": "kubevirt-vm",
        "tenant": tenant,
        "vmConfig": {"containerDiskImage": f"quay.io/containerdisks/fedora:4{index % 2}", "cpu": 2, "memory": "2Gi",
                     "cloudInitTemplate": secret},
        "warm": {"replicas": 2},
        "network": {"egress": {"cidrs": ["0.0.0.0/0"], "ports": [{"port": 443}]}},
    }


def cluster_config(index: int, engine: bool = False) -> dict[str, Any]:
    """The project config (keys without the `sandbox-infra:` prefix) of one cluster. Secret
    values are sealed as in a stack file read offline; `engine`: decrypted, as the Pulumi
    engine hands them to the program."""
    environment = ENVIRONMENTS[index % 3]
    tenants, templates, pools, runtimes = [], [], [], []
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
            runtimes.append({"id": f"{name}-rt", "executionKind": "pod", "sandboxTemplate": name})
        runtimes.append(_vm_runtime(tenant, index, engine))
    if index % 3 == 0:
        single = {**_vm_runtime("agents-0", index, engine), "id": "agents-0-builder"}
        del single["warm"]
        single["vmConfig"] = {**single["vmConfig"], "mode": "single", "cpu": 4, "memory": "8Gi"}
        runtimes.append(single)
    return {
        "cluster": {"name": f"bench-{index:03d}", "environment": environment,
                    "provider": {"context": f"bench-{index:03d}"}},
        "agentSandbox": {"version": "v0.5.6" if index % 4 else "v0.4.6"},
        "kubevirt": {"install": "managed", "useEmulation": environment == "dev"},
        "policy": {"maxWarmPoolReplicas": 100, "requireRuntimeClass": True,
                   "allowedRegistries": ["registry.example.com", "quay.io/containerdisks"]},
        "tenants": tenants,
        "templates": templates,
        "warmPools": pools,
        "runtimes": runtimes,
    }


def fleet(clusters: int, engine: bool = False) -> list[dict[str, Any]]:
    return [cluster_config(i, engine) for i in range(clusters)]


def spec(config: dict[str, Any], engine: bool = False) -> StackSpec:
    """The validated spec, as `render` builds it offline or (`engine`) the Pulumi program does."""
    return spec_from_config(config, source=config["cluster"]["name"], secret_keys={"runtimes"} if engine else None)
