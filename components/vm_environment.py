"""VmEnvironment component: one kubevirt-vm runtime (VM pool or VM, Secrets, Service,
NetworkPolicy)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .errors import ConfigError
from .k8s import dependencies, kubernetes_resource, metadata
from .manifests.common import Manifest
from .manifests.vm import (
    AUTHORIZED_KEYS_KEY,
    USER_DATA_KEY,
    build_vm_environment,
    cloud_init_secret_name,
    ssh_secret_name,
)
from .specs.runtime import RuntimeSpec
from .specs.secrets import SecretValue

SECRET_OUTPUTS = ["data", "stringData"]


@dataclass(frozen=True)
class VmEnvironmentArgs:
    runtime: RuntimeSpec
    """A `kubevirt-vm` runtime (`runtimes[]` with `vmConfig` in docs/config.md): a
    VirtualMachinePool (or one VirtualMachine) in the tenant namespace `runtime.tenant`,
    its cloud-init and SSH-key Secrets, a Service for the agent port and a default-deny
    NetworkPolicy. Secret values reach Pulumi only as secrets; persistent disks are
    protected from delete and replace (`vmConfig.protectDisks`, on by default)."""
    workload_depends_on: tuple[pulumi.Resource, ...] = ()
    """What the VM workload needs first besides the namespace: KubeVirt ready (`KubeVirt.ready`),
    CDI's CRDs for disks. Its Secrets, Service and policy do not wait for these."""


class VmEnvironment(pulumi.ComponentResource):
    """The VM workload waits for `opts.depends_on` (the tenant), `workload_depends_on`
    (KubeVirt ready, CDI present) and for its Secrets and NetworkPolicy. Secret values go to
    Pulumi only as secrets: encrypted in state, masked in logs and diffs. With persistent
    disks the workload is protected: Pulumi refuses to delete or replace it (and so its
    DataVolumes) until it is explicitly unprotected.
    """

    service: pulumi.Output[str]
    """The Service in front of the VMs' agent port: `<service>.<namespace>.svc`."""
    namespace: pulumi.Output[str]
    kind: str
    """`VirtualMachinePool` or `VirtualMachine`."""

    def __init__(self, name: str, args: VmEnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:VmEnvironment", name, None, opts)
        runtime = args.runtime
        vm = runtime.vm_config
        if vm is None:
            raise ConfigError(f"sandbox-infra:runtimes: runtime {runtime.id!r} has no vmConfig; a VM environment needs one")
        values: dict[str, tuple[str, SecretValue]] = {cloud_init_secret_name(runtime): (USER_DATA_KEY, vm.cloud_init_template)}
        if vm.ssh_authorized_keys is not None:
            values[ssh_secret_name(runtime)] = (AUTHORIZED_KEYS_KEY, vm.ssh_authorized_keys)

        after = dependencies(opts)
        inside = pulumi.ResourceOptions(parent=self, depends_on=after)
        secret_opts = pulumi.ResourceOptions.merge(inside, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        self.secrets: list[pulumi.CustomResource] = []
        others: list[pulumi.CustomResource] = []
        service: pulumi.CustomResource | None = None
        workload: Manifest | None = None
        for manifest in build_vm_environment(runtime):
            if manifest["kind"] == "Secret":
                key, value = values[manifest["metadata"]["name"]]
                self.secrets.append(kubernetes_resource(_with_secret(manifest, key, value), secret_opts))
            elif manifest["kind"] in ("VirtualMachinePool", "VirtualMachine"):
                workload = manifest
            else:
                others.append(kubernetes_resource(manifest, inside))
                service = others[-1] if manifest["kind"] == "Service" else service
        if workload is None or service is None:
            raise ConfigError(f"sandbox-infra:runtimes: runtime {runtime.id!r} builds no VirtualMachine or VirtualMachinePool "
                              "and Service")
        self.workload = kubernetes_resource(workload, pulumi.ResourceOptions(
            parent=self,
            depends_on=[*after, *args.workload_depends_on, *self.secrets, *others],  # policy in place before a VM boots
            protect=bool(vm.disks) and vm.protect_disks,
        ))
        self.service = metadata(service)
        self.namespace = metadata(self.workload, "namespace")
        self.kind = workload["kind"]
        self.register_outputs({"name": runtime.id, "namespace": self.namespace, "kind": self.kind, "service": self.service})


def _with_secret(manifest: Manifest, key: str, value: SecretValue) -> Manifest:
    # Under the engine every secret is decrypted (the loader rejects sealed ones there); a
    # sealed one means a spec read offline (tests under mocks): keep the redacted placeholder.
    text = manifest["stringData"][key] if value.sealed else value.reveal()
    return {**manifest, "stringData": {key: pulumi.Output.secret(text)}}
