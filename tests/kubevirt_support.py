"""Helpers for the KubeVirt / runtime-catalogue tests: upstream schemas turned into
strict JSON Schema validators, and stack configs with VM runtimes."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

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


# --- schemas ----------------------------------------------------------------------

def strict_schema(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects unknown fields (the API server prunes or
    rejects them; plain JSON Schema would silently accept a typo) and understands
    Kubernetes' int-or-string."""
    if not isinstance(schema, dict):
        return schema
    result = dict(schema)
    if result.get("format") == "int-or-string" or result.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in result:
        result["properties"] = {name: strict_schema(sub) for name, sub in result["properties"].items()}
        if "additionalProperties" not in result and not result.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
    if isinstance(result.get("additionalProperties"), dict):
        result["additionalProperties"] = strict_schema(result["additionalProperties"])
    if "items" in result:
        result["items"] = strict_schema(result["items"])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in result:
            result[keyword] = [strict_schema(sub) for sub in result[keyword]]
    if "definitions" in result:
        result["definitions"] = {name: strict_schema(sub) for name, sub in result["definitions"].items()}
    return result


@lru_cache(maxsize=1)
def _swagger_definitions() -> dict[str, Any]:
    path = kubevirt_mirror() / KUBEVIRT_DIR / "api/openapi-spec/swagger.json"
    return strict_schema({"definitions": json.loads(path.read_text())["definitions"]})["definitions"]


# KubeVirt kinds we render -> their definition in the upstream OpenAPI document.
SWAGGER_DEFINITION = {
    ("kubevirt.io/v1", "KubeVirt"): "v1.KubeVirt",
    ("kubevirt.io/v1", "VirtualMachine"): "v1.VirtualMachine",
    ("pool.kubevirt.io/v1beta1", "VirtualMachinePool"): "v1beta1.VirtualMachinePool",
}


@lru_cache(maxsize=8)
def swagger_validator(definition: str) -> jsonschema.Draft4Validator:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _swagger_definitions()}
    return jsonschema.Draft4Validator(schema)


@lru_cache(maxsize=1)
def kubevirt_crd_validator() -> jsonschema.Draft7Validator:
    """The `kubevirts.kubevirt.io` CRD's v1 openAPIV3Schema (manifests/generated/kv-resource.yaml)."""
    path = kubevirt_mirror() / KUBEVIRT_DIR / "manifests/generated/kv-resource.yaml"
    crd = next(d for d in yaml.safe_load_all(path.read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # The API server fills metadata; its schema in a CRD is only `type: object`.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(strict_schema(schema))


def schema_errors(validator: jsonschema.protocols.Validator, manifest: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(manifest)]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)
