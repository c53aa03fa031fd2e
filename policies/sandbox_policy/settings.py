"""The rules' settings: per-stack caps, allowlists and enforcement.

The program reads them from the stack's `policy:` config (the same model, so the same
keys and checks); the CrossGuard pack from its policy config (`--policy-pack-config`),
one property per setting a rule reads (crossguard.py builds each policy's schema from
this model).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .vocabulary import Enforcement

# KubeVirt feature gates vetted as not weakening the VM/node boundary: the ones a stack's
# kubevirt config accepts, and the policy allowlist's default. Left out on purpose, because each weakens the
# wall between an (untrusted) guest and the node or the cluster:
#   Root (virt-launcher as root), Sidecar (arbitrary hook containers in virt-launcher),
#   HostDisk (node filesystem as disk), HostDevices / HostDevicesWithDRA / GPUsWithDRA
#   (node PCI devices), DownwardMetrics (node metrics inside the guest), VSOCK
#   (host<->guest channel), PersistentReservation (privileged pr-helper),
#   UtilityVolumes (hot-plug into the launcher pod), ExperimentalIgnitionSupport.
SAFE_KUBEVIRT_FEATURE_GATES: tuple[str, ...] = (
    "AlignCPUs",
    "CPUManager",
    "DeclarativeHotplugVolumes",
    "ExpandDisks",
    "HotplugVolumes",
    "ImageVolume",
    "IncrementalBackup",
    "KubevirtSeccompProfile",
    "NodeRestriction",
    "ObjectGraph",
    "PanicDevices",
    "Snapshot",
    "VideoConfig",
    "VMExport",
)

# RuntimeClass names that put a kernel boundary between sandboxed code and the node.
# `gvisor` is the name upstream agent-sandbox's example admission policy demands and the
# one GKE Sandbox installs; `kata` and `kata-<hypervisor>` are the names kata-deploy
# installs (kata-qemu, kata-clh, kata-fc, kata-dragonball). Exact names, not a `kata*`
# prefix: a RuntimeClass is whatever its handler says, so a name proves nothing by its
# spelling (the RuntimeClass objects a stack renders are judged by their handler).
SANDBOX_RUNTIME_CLASSES: tuple[str, ...] = ("gvisor", "kata", "kata-clh", "kata-dragonball", "kata-fc", "kata-qemu")


class PolicySpec(BaseModel):
    # As the program's config models: camelCase keys, unknown keys refused, no coercion.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True,
                              validate_default=True, strict=True)

    enforcement: Enforcement = "mandatory"
    """advisory: policy violations are reported but never block (dev); mandatory: each
    rule's own level applies, and mandatory violations block the update."""
    max_warm_pool_replicas: int = Field(default=20, ge=0, le=1000)
    require_runtime_class: bool = False
    """Every untrusted template must name a sandboxing runtime class (gVisor, Kata)."""
    sandbox_runtime_classes: list[str] = Field(default=list(SANDBOX_RUNTIME_CLASSES), min_length=1)
    """The RuntimeClass names that sandbox (gVisor, Kata): an untrusted template that names
    a runtime class must name one of these, so `runc` is never mistaken for a sandbox."""
    allowed_registries: list[str] = []
    """Image registries (host or host/path prefix) trusted without a digest pin."""
    allowed_host_devices: list[str] = []
    """Device resource names (GPUs, PCI/USB host devices) that VMs may request."""
    allowed_kubevirt_feature_gates: list[str] = list(SAFE_KUBEVIRT_FEATURE_GATES)
    """KubeVirt feature gates a stack may enable; the default is the vetted safe set."""
    admission: Literal["off", "audit", "enforce"] = "enforce"
    """The rules as ValidatingAdmissionPolicies deployed with the stack (admission.py): enforce
    refuses violating objects (validationActions [Deny]), audit warns and records them
    ([Audit, Warn]), off deploys none (a mandatory violation in prod)."""
