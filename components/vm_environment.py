"""VmEnvironment component: one kubevirt-vm runtime (VM pool or VM, Secrets, Service,
NetworkPolicy)."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Any

import pulumi

from .errors import ConfigError
from .k8s import as_spec, dependencies, metadata, one_of, place
from .kubevirt import KubeVirt
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
from .tenant import Tenant

WORKLOAD_KINDS = ("VirtualMachinePool", "VirtualMachine")


@dataclass
class VmEnvironmentArgs:
    spec: RuntimeSpec | dict[str, Any]
    """A `kubevirt-vm` runtime (`runtimes[]` with `vmConfig` in docs/config.md), as a
    `RuntimeSpec` or a mapping of its keys (`tenant` may be left out: it is the tenant
    passed): a VirtualMachinePool (or one VirtualMachine), its cloud-init and SSH-key
    Secrets, a Service for the agent port and a default-deny NetworkPolicy. Its secret keys,
    `vmConfig.cloudInitTemplate` and `vmConfig.sshAuthorizedKeys`, take a `SecretValue` from
    stack config or a `pulumi.Output` (another resource's output, e.g.
    `tls.PrivateKey(...).public_key_openssh`, or `config.require_secret(...)`): either is stored
    only as a Pulumi secret."""
    tenant: Tenant
    """The tenant whose namespace the VMs live in; everything waits for it."""
    kubevirt: KubeVirt | None = None
    """The KubeVirt install the VMs run on: the VM workload (not its Secrets, Service and
    policy) waits for it to be Available. None when the cluster's KubeVirt is not in this program."""


class VmEnvironment(pulumi.ComponentResource):
    """The VM workload waits for the tenant, the KubeVirt install, `opts.depends_on` (CDI's
    CRDs, for disks) and for its Secrets and NetworkPolicy. Secret values go to Pulumi only
    as secrets: encrypted in state, masked in logs and diffs. With persistent disks the
    workload is protected: Pulumi refuses to delete or replace it (and so its DataVolumes)
    until it is explicitly unprotected.
    """

    name: pulumi.Output[str]
    """The runtime id: the name of the VM pool (or VM) and its Service."""
    service: pulumi.Output[str]
    """The Service in front of the VMs' agent port: `<service>.<namespace>.svc`."""
    namespace: pulumi.Output[str]
    kind: pulumi.Output[str]
    """`VirtualMachinePool` or `VirtualMachine`."""

    def __init__(self, name: str, args: VmEnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:VmEnvironment", name, None, opts)
        where = f"VmEnvironment {name!r}"
        tenant = args.tenant._spec.name
        runtime = as_spec(RuntimeSpec, args.spec, where, tenant=tenant)
        one_of(runtime.tenant or "", tenant, where, "tenant")
        vm = runtime.vm_config
        if vm is None:
            raise ConfigError(f"{where}: runtime {runtime.id!r} has no vmConfig; a VM environment needs one")
        self._spec = runtime
        values: dict[str, tuple[str, SecretValue]] = {cloud_init_secret_name(runtime): (USER_DATA_KEY, vm.cloud_init_template)}
        if vm.ssh_authorized_keys is not None:
            values[ssh_secret_name(runtime)] = (AUTHORIZED_KEYS_KEY, vm.ssh_authorized_keys)
        manifests = [_with_secret(m, *values[m["metadata"]["name"]]) if m["kind"] == "Secret" else m
                     for m in build_vm_environment(runtime)]
        workload = next(i for i, m in enumerate(manifests) if m["kind"] in WORKLOAD_KINDS)
        service = next(i for i, m in enumerate(manifests) if m["kind"] == "Service")
        created = place(self, manifests, [*dependencies(opts), args.tenant], {workload: pulumi.ResourceOptions(
            depends_on=[args.kubevirt] if args.kubevirt is not None else [],
            protect=bool(vm.disks) and vm.protect_disks,
        )})
        self.name = metadata(created[workload])
        self.service = metadata(created[service])
        self.namespace = metadata(created[workload], "namespace")
        self.kind = pulumi.Output.from_input(manifests[workload]["kind"])
        self.register_outputs({"name": self.name, "namespace": self.namespace, "kind": self.kind, "service": self.service})


def _with_secret(manifest: Manifest, key: str, value: SecretValue) -> Manifest:
    # Under the engine every secret is decrypted (the loader rejects sealed ones there); a
    # sealed one means a spec read offline (tests under mocks): keep the redacted placeholder.
    text = manifest["stringData"][key] if value.sealed else value.reveal()
    return {**manifest, "stringData": {key: pulumi.Output.secret(text)}}
