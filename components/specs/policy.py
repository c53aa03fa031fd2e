"""Per-stack security settings that the builders and the policy rules share."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Spec

# KubeVirt feature gates (v1.9.0) that add features without weakening the boundary
# between a VM and its node. Deliberately absent: Root, HostDisk, HostDevices, GPU,
# Sidecar, PersistentReservation, DisableMDEVConfiguration, DownwardMetrics, VMExport.
SAFE_KUBEVIRT_FEATURE_GATES = (
    "AlignCPUs",
    "CPUManager",
    "DeclarativeHotplugVolumes",
    "ExpandDisks",
    "HotplugVolumes",
    "ImageVolume",
    "KubevirtSeccompProfile",
    "NodeRestriction",
    "ObjectGraph",
    "PanicDevices",
    "Snapshot",
    "VideoConfig",
)


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
