"""Helpers for the KubeVirt / runtime-catalogue tests: stack configs with VM runtimes,
test secrets, and the offline loader (schemas live in tests/schemas.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.specs.loader import spec_from_config
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader, upstream_dir

KUBEVIRT_DIR = "kubevirt/v1.9.0"

# Test secrets: no rendered output, error message or non-secret Pulumi input may contain them.
CLOUD_INIT_SECRET = "#cloud-config\nchpasswd: {list: 'agent:Tr0ub4dor-CLOUDINIT-7f3a'}\n"
SSH_SECRET = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnlySSHKEY9b2e test@example"
SECRET_MARKERS = ("Tr0ub4dor-CLOUDINIT-7f3a", "AAAAC3NzaC1lZDI1NTE5AAAAIOnlySSHKEY9b2e")


def kubevirt_mirror() -> Path:
    path = upstream_dir()
    if not (path / KUBEVIRT_DIR / "kubevirt-operator.yaml").is_file():
        pytest.skip(f"pinned KubeVirt mirror not found under {path} (set UPSTREAM_DIR to ../shared/upstream)")
    return path


def offline_loader(tmp_path: Path) -> UpstreamLoader:
    # Downloads off: the tests prove the offline path and never reach the network.
    return UpstreamLoader(mirror=kubevirt_mirror(), cache=tmp_path / "cache", allow_download=False)


# --- configs ----------------------------------------------------------------------

RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def vm_stack_config() -> dict[str, Any]:
    """A stack with a legacy template, an inline pod runtime, a published template and
    three VM runtimes (pool with disk + SSH, single VM, pool by instancetype)."""
    return copy.deepcopy({
        "cluster": {"name": "test", "environment": "dev"},
        "kubevirt": {"useEmulation": True, "featureGates": ["Snapshot", "ExpandDisks"]},
        "tenants": [
            {"name": "team-a", "gatewayServiceAccounts": [{"name": "gateway"}, {"name": "gw", "namespace": "edge"}]},
            {"name": "team-b"},
        ],
        "templates": [{"name": "python", "tenant": "team-a", "image": "ghcr.io/example/python:3.12", "resources": RESOURCES}],
        "warmPools": [{"name": "python", "template": "python", "replicas": 2}],
        "runtimes": [
            {"id": "python", "displayName": "Python", "executionKind": "pod", "sandboxTemplate": "python"},
            {"id": "node", "executionKind": "pod", "tenant": "team-b",
             "container": {"image": "ghcr.io/example/node:22.1", "port": 3000, "resources": RESOURCES},
             "warm": {"replicas": 3}},
            {"id": "devbox", "displayName": "Dev box", "executionKind": "kubevirt-vm", "tenant": "team-a",
             "vmConfig": {"containerDiskImage": "quay.io/containerdisks/fedora:40", "cpu": 2, "memory": "2Gi",
                          "cloudInitTemplate": CLOUD_INIT_SECRET, "sshAuthorizedKeys": SSH_SECRET,
                          "disks": [{"name": "data", "size": "20Gi", "storageClassName": "fast"},
                                    {"name": "cache", "size": "5Gi", "image": "quay.io/containerdisks/cache:1.0"}]},
             "warm": {"replicas": 2, "updateStrategy": "Recreate"},
             "network": {"egress": {"cidrs": ["0.0.0.0/0"], "ports": [{"port": 443}]}}},
            {"id": "builder", "executionKind": "kubevirt-vm", "tenant": "team-b",
             "vmConfig": {"mode": "single", "containerDiskImage": "quay.io/containerdisks/ubuntu:24.04",
                          "cpu": 4, "memory": "8Gi", "port": 9000, "cloudInitTemplate": CLOUD_INIT_SECRET,
                          "runStrategy": "RerunOnFailure"}},
            {"id": "sized", "executionKind": "kubevirt-vm", "tenant": "team-b",
             "vmConfig": {"containerDiskImage": "quay.io/containerdisks/fedora:40",
                          "instancetype": {"name": "u1.medium"}, "preference": {"name": "fedora"},
                          "cloudInitTemplate": CLOUD_INIT_SECRET},
             "network": {"management": "Unmanaged", "externalEnforcer": "cilium"}},
        ],
    })


def engine_spec(config: dict[str, Any]) -> StackSpec:
    """The spec as the Pulumi engine would build it: secrets decrypted, `runtimes` marked secret."""
    return spec_from_config(config, source="Pulumi.test.yaml", secret_keys={"runtimes"})


def sealed(config: dict[str, Any]) -> dict[str, Any]:
    """The same config as it reads from a stack file offline: secret values are ciphertext."""
    result = copy.deepcopy(config)
    for runtime in result.get("runtimes", []):
        vm = runtime.get("vmConfig", {})
        for key in ("cloudInitTemplate", "sshAuthorizedKeys"):
            if key in vm:
                vm[key] = {"secure": "v1:bm9uY2U=:Y2lwaGVydGV4dA=="}
    return result


# --- lookups ----------------------------------------------------------------------

def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)
