"""Labels, annotations and object helpers shared by every builder."""

from __future__ import annotations

import copy
from typing import Any

from sandbox_policy.vocabulary import (  # noqa: F401  (re-exported: the builders' import point)
    ALLOWED_DOMAINS_ANNOTATION,
    CILIUM_ENFORCER,
    DOMAIN,
    EGRESS_ENFORCER_ANNOTATION,
    GPU_OPT_IN_ANNOTATION,
    MANAGED_BY_LABEL,
    TEMPLATE_LABEL,
    TENANT_LABEL,
    TRUST_ANNOTATION,
    Manifest,
)

MANAGED_BY = dict([MANAGED_BY_LABEL])

# agent-sandbox's API groups: Sandboxes in the core one; templates, pools and claims in extensions.
SANDBOX_GROUP = "agents.x-k8s.io"
EXTENSIONS_GROUP = "extensions.agents.x-k8s.io"
AGENT_SANDBOX_GROUPS = (SANDBOX_GROUP, EXTENSIONS_GROUP)

# pulumi-kubernetes await control (https://www.pulumi.com/docs/iac/clouds/kubernetes/).
SKIP_AWAIT = "pulumi.com/skipAwait"
WAIT_FOR = "pulumi.com/waitFor"
# The stack owns every field it declares: `pulumi up` takes a field back from whoever changed
# it behind Pulumi's back (kubectl edit/scale, another tool) instead of failing with a
# server-side apply conflict, so drift found by `pulumi refresh` is put back. Fields the stack
# does not declare (an autoscaler's replicas, via ignore_changes; a CA bundle injected into a
# CRD) stay with their managers.
PATCH_FORCE = "pulumi.com/patchForce"

RESTRICTED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}

# The order of kinds, written once. Within a component every object waits for the objects of
# the earlier tiers (components/graph.py); offline render lists objects in the same order
# (apply_order), as Helm installs: namespaces and CRDs before what lives in them, a workload
# after its configuration, access and policy, what scales or configures a running workload last.
KIND_TIERS: tuple[tuple[str, ...], ...] = (
    # What other objects live in or are typed by.
    ("Namespace", "CustomResourceDefinition", "PriorityClass"),
    # Limits, network policy, identity, configuration, access and admission rules: in place
    # before any workload of the component starts.
    ("ResourceQuota", "LimitRange", "NetworkPolicy", "CiliumNetworkPolicy", "ServiceAccount", "Secret", "ConfigMap",
     "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "PrometheusRule",
     "ServiceMonitor"),
    # Workloads, the Services in front of them (a Service's endpoints come from the workload's
    # pods: pulumi-kubernetes would wait for them, so a workload never waits for its Service)
    # and bindings of the rules above.
    ("Service", "Deployment", "SandboxTemplate", "SandboxWarmPool", "ValidatingAdmissionPolicyBinding"),
    # What configures or scales a running workload (the KubeVirt CR, which its operator reconciles).
    ("KubeVirt", "HorizontalPodAutoscaler", "ScaledObject"),
    # What runs on a platform installed above: VMs need KubeVirt Available.
    ("VirtualMachine", "VirtualMachinePool"),
)
KIND_ORDER = [kind for tier in KIND_TIERS for kind in tier]
_TIER = {kind: number for number, tier in enumerate(KIND_TIERS) for kind in tier}


class UnplacedKind(ValueError):
    """A kind KIND_TIERS does not place: nobody decided what it must wait for."""


def tier(kind: str) -> int:
    if kind not in _TIER:
        raise UnplacedKind(kind)
    return _TIER[kind]


def unplaced_kinds(manifests: list[Manifest]) -> list[str]:
    """Kinds of `manifests` that KIND_TIERS does not place (upstream added a kind)."""
    return sorted({m["kind"] for m in manifests} - set(_TIER))


def obj(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **body: Any,
) -> Manifest:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {**(labels or {}), **MANAGED_BY}
    metadata["annotations"] = {**(annotations or {}), PATCH_FORCE: "true"}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def identity(manifest: Manifest) -> tuple[str, str, str]:
    """(kind, namespace, name): what makes an object unique in a cluster (per group)."""
    meta = manifest["metadata"]
    return manifest["kind"], meta.get("namespace", ""), meta["name"]


def apply_order(manifests: list[Manifest]) -> list[Manifest]:
    def rank(manifest: Manifest) -> tuple[int, str, str, str]:
        kind, namespace, name = identity(manifest)
        return KIND_ORDER.index(kind) if kind in _TIER else len(KIND_ORDER), kind, namespace, name

    return sorted(manifests, key=rank)


def from_upstream(document: Manifest, deep_kinds: frozenset[str] = frozenset({"Deployment"})) -> Manifest:
    """An editable object made from a parsed upstream document, which the loader caches and
    shares between renders. Builders set labels and annotations on every object and harden
    the `deep_kinds`, so those get a deep copy and everything else its own top level and
    metadata (with its own labels and annotations). The rest, above all the large CRD
    schemas, stays shared with the cache: deep-copying it was 96 % of render time. Rendered
    objects are read-only."""
    if document["kind"] in deep_kinds:
        document = copy.deepcopy(document)
        document["metadata"].setdefault("annotations", {})[PATCH_FORCE] = "true"
        return document
    metadata = dict(document["metadata"])
    if "labels" in metadata:
        metadata["labels"] = dict(metadata["labels"])
    metadata["annotations"] = {**metadata.get("annotations", {}), PATCH_FORCE: "true"}
    return {**document, "metadata": metadata}
