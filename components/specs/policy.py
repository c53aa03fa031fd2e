"""Per-stack security settings that the builders and the policy rules share."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from .base import Spec
from .kubevirt import FeatureGate

# The KubeVirt feature gates vetted as not weakening the VM/node boundary are the ones the
# kubevirt config accepts (specs/kubevirt.py says why the others are left out); the policy
# allowlist starts from the same set, so hand-written KubeVirt CRs are held to it too.
SAFE_KUBEVIRT_FEATURE_GATES: tuple[str, ...] = get_args(FeatureGate)


class PolicySpec(Spec):
    enforcement: Literal["advisory", "mandatory"] = "mandatory"
    """advisory: policy violations are reported but never block (dev); mandatory: each
    rule's own level applies, and mandatory violations block the update."""
    max_warm_pool_replicas: int = Field(default=20, ge=0, le=1000)
    require_runtime_class: bool = False
    """Every template must name a sandboxing runtime class (gVisor, Kata)."""
    allowed_registries: list[str] = []
    """Image registries (host or host/path prefix) trusted without a digest pin."""
    allowed_host_devices: list[str] = []
    """Device resource names (GPUs, PCI/USB host devices) that VMs may request."""
    allowed_kubevirt_feature_gates: list[str] = list(SAFE_KUBEVIRT_FEATURE_GATES)
    """KubeVirt feature gates a stack may enable; the default is the vetted safe set."""
