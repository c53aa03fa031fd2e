"""The execution-environment catalogue: one list of runtimes, each backed by pods
(agent-sandbox) or by KubeVirt VMs, published to the cluster in one shape.

A `pod` runtime either defines its container inline (the stack then generates a
SandboxTemplate and, with `warm`, a SandboxWarmPool named after the runtime), or
publishes a template from the low-level `templates` section (`sandboxTemplate`).
A `kubevirt-vm` runtime generates a VM pool (or one VM), its cloud-init Secret, a
Service and a NetworkPolicy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import DnsLabel, DnsSubdomain, Image, Namespace, Quantity, Replicas, Spec, UserLabels, UserMetadata
from .network import NetworkSpec
from .secrets import SecretText
from .template import ContainerSpec, TemplateSpec
from .warm_pool import DEFAULT_READY_TIMEOUT, ReadyTimeout, WarmPoolSpec

ExecutionKind = Literal["pod", "kubevirt-vm"]


class WarmSpec(Spec):
    replicas: Replicas
    update_strategy: Literal["OnReplenish", "Recreate"] = "OnReplenish"
    """OnReplenish: running sandboxes / VMs keep their old config until replaced (no
    session is cut). Recreate: replace them at once."""
    wait_for_ready: bool = False
    """Pod runtimes: block `pulumi up` until the warm pool is ready (see warmPools[].waitForReady)."""
    ready_timeout: ReadyTimeout = DEFAULT_READY_TIMEOUT
    """Pod runtimes: how long `pulumi up` waits for it, 10s..1h."""
    allow_gpu: bool = False
    """Pod runtimes: explicit opt-in for idle warm sandboxes that hold GPUs."""


class ObjectRef(Spec):
    name: DnsSubdomain
    kind: str | None = None
    """e.g. VirtualMachineClusterInstancetype (KubeVirt's default when unset)."""


class DiskSpec(Spec):
    """A persistent disk: a DataVolume template (needs CDI in the cluster)."""

    name: DnsLabel
    size: Quantity
    storage_class_name: DnsSubdomain | None = None
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"]] = ["ReadWriteOnce"]
    image: Image | None = None
    """Import this container-disk image into the disk; an empty disk when unset."""


class VmConfig(Spec):
    mode: Literal["pool", "single"] = "pool"
    """pool: a VirtualMachinePool of `warm.replicas` VMs (0 when no `warm`). single: one VirtualMachine."""
    container_disk_image: Image
    cpu: int | None = Field(default=None, ge=1, le=64)
    """Virtual CPU cores. Set cpu and memory, or an instancetype."""
    memory: Quantity | None = None
    """Guest memory, e.g. 2Gi."""
    instancetype: ObjectRef | None = None
    preference: ObjectRef | None = None
    run_strategy: Literal["Always", "RerunOnFailure", "Manual", "Halted", "Once"] = "Always"
    port: int = Field(default=8888, ge=1, le=65535)
    """The agent's port inside the guest (AG-UI / agent API)."""
    cloud_init_template: SecretText
    """cloud-init user data (a #cloud-config document) as a Pulumi secret. It reaches the
    VM only through a Secret (`cloudInitNoCloud.secretRef`), never inline in the VM."""
    ssh_authorized_keys: SecretText | None = None
    """Public keys (one per line) as a Pulumi secret, injected through `accessCredentials`."""
    disks: list[DiskSpec] = []
    protect_disks: bool = True
    """With persistent disks, Pulumi refuses to delete or replace the VM (pool) until it is
    explicitly unprotected: deleting it deletes its DataVolumes."""

    @model_validator(mode="after")
    def _sizing(self) -> VmConfig:
        sized = self.cpu is not None or self.memory is not None
        if self.instancetype is not None and sized:
            raise ValueError("set either cpu and memory, or instancetype, not both (KubeVirt rejects the mix)")
        if self.instancetype is None and (self.cpu is None or self.memory is None):
            raise ValueError("set cpu and memory (e.g. cpu: 2, memory: 2Gi), or an instancetype")
        if self.preference is not None and self.instancetype is None:
            raise ValueError("preference needs an instancetype")
        names = [d.name for d in self.disks]
        if len(set(names)) != len(names) or {"rootdisk", "cloudinit"} & set(names):
            raise ValueError("disks[].name must be unique and not 'rootdisk' or 'cloudinit' (used by the VM itself)")
        return self


class RuntimeSpec(Spec):
    id: DnsLabel
    """Stable id the gateway asks for; also the name of the generated objects."""
    display_name: str = Field(default="", max_length=100)
    execution_kind: ExecutionKind
    tenant: DnsLabel | None = None
    """Tenant (namespace) the runtime lives in; required unless sandboxTemplate is used."""
    sandbox_template: DnsLabel | None = None
    """pod: publish this template of the `templates` section instead of an inline container."""
    container: ContainerSpec | None = None
    vm_config: VmConfig | None = None
    warm: WarmSpec | None = None
    network: NetworkSpec = NetworkSpec()
    labels: UserLabels = {}
    annotations: UserMetadata = {}

    @model_validator(mode="after")
    def _shape_matches_kind(self) -> RuntimeSpec:
        if self.execution_kind == "pod":
            if self.vm_config is not None:
                raise ValueError("executionKind pod takes container (or sandboxTemplate), not vmConfig")
            if (self.container is None) == (self.sandbox_template is None):
                raise ValueError("executionKind pod needs exactly one of container or sandboxTemplate")
            if self.sandbox_template is not None:
                inline = sorted({"tenant", "warm", "network", "labels", "annotations"} & self.model_fields_set)
                if inline:
                    raise ValueError(
                        "sandboxTemplate publishes an existing template, whose own entry (and warmPools) "
                        f"define {', '.join(inline)}: remove them here"
                    )
        else:
            if self.vm_config is None:
                raise ValueError("executionKind kubevirt-vm needs vmConfig")
            if self.container is not None or self.sandbox_template is not None:
                raise ValueError("executionKind kubevirt-vm takes vmConfig, not container or sandboxTemplate")
            if self.vm_config.mode == "single" and self.warm is not None:
                raise ValueError("vmConfig.mode single runs one VM: remove warm (or use mode: pool)")
        if self.sandbox_template is None and self.tenant is None:
            raise ValueError("tenant is required: the namespace this runtime lives in")
        return self

    def as_template(self) -> TemplateSpec | None:
        """The SandboxTemplate an inline pod runtime generates."""
        if self.container is None:
            return None
        return TemplateSpec(
            **dict(self.container), name=self.id, tenant=self.tenant,
            network=self.network, labels=self.labels, annotations=self.annotations,
        )

    def as_warm_pool(self) -> WarmPoolSpec | None:
        """The SandboxWarmPool an inline pod runtime with `warm` generates."""
        if self.container is None or self.warm is None:
            return None
        return WarmPoolSpec(
            name=self.id, template=self.id, replicas=self.warm.replicas,
            update_strategy=self.warm.update_strategy, wait_for_ready=self.warm.wait_for_ready,
            ready_timeout=self.warm.ready_timeout, allow_gpu=self.warm.allow_gpu,
        )


class CatalogueSpec(Spec):
    namespace: Namespace = "sandbox-catalogue"
    """Namespace of the catalogue ConfigMap; created by the stack unless it is a tenant."""
    name: DnsSubdomain = "runtime-catalogue"
    cluster_domain: DnsSubdomain = "cluster.local"
    """DNS domain of the cluster, for the Service names in the catalogue."""


class PodRuntimeEntry(Spec):
    """How one pod runtime is listed in a RuntimeCatalogue component."""

    id: DnsLabel
    """The runtime id gateways ask for."""
    display_name: str = Field(default="", max_length=100)
    """The name shown to users; default: the id."""
    template: DnsLabel | None = None
    """The template passed (`templates`) a session of this runtime claims; default: the one named `id`."""


class RuntimeCatalogueSpec(CatalogueSpec):
    """Where a RuntimeCatalogue component publishes its ConfigMap, and what its pod runtimes are called."""

    pod_runtimes: list[PodRuntimeEntry] = []
    """One entry per pod runtime (`runtimes[]` with executionKind pod in docs/config.md), in
    gateway terms; default (none): every template passed, under its own name. VM runtimes
    are listed under their own id and displayName."""
