"""VmEnvironment component: one kubevirt-vm runtime (VM pool or VM, Secrets, Service,
NetworkPolicy)."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Annotated, Any

import pulumi
from pydantic import Field

from .errors import ConfigError
from .k8s import as_spec, checked_input, dependencies, metadata, one_of, place
from .kubevirt import KubeVirt
from .manifests.common import Manifest
from .manifests.vm import (
    AUTHORIZED_KEYS_KEY,
    USER_DATA_KEY,
    build_vm_environment,
    cloud_init_secret_name,
    ssh_secret_name,
)
from .specs.base import Spec
from .specs.loader import validated
from .specs.runtime import RuntimeSpec
from .specs.secrets import SecretValue
from .tenant import Tenant

WORKLOAD_KINDS = ("VirtualMachinePool", "VirtualMachine")
# The secret args fields, once known, must be text. Messages name them by their camelCase key,
# which keeps the value out (components/inputs.py: SECRET_KEYS).
Text = Annotated[str, Field(min_length=1)]


class _CloudInitField(Spec):
    cloud_init_template: Text


class _SshKeysField(Spec):
    ssh_authorized_keys: Text


SECRET_FIELDS: dict[str, type[Spec]] = {"cloud_init_template": _CloudInitField, "ssh_authorized_keys": _SshKeysField}


@dataclass
class VmEnvironmentArgs:
    spec: RuntimeSpec | dict[str, Any]
    """A `kubevirt-vm` runtime (`runtimes[]` with `vmConfig` in docs/config.md), as a
    `RuntimeSpec` or a mapping of its keys (`tenant` may be left out: it is the tenant
    passed): a VirtualMachinePool (or one VirtualMachine), its cloud-init and SSH-key
    Secrets, a Service for the agent port and a default-deny NetworkPolicy."""
    tenant: Tenant
    """The tenant whose namespace the VMs live in; everything waits for it."""
    kubevirt: KubeVirt | None = None
    """The KubeVirt install the VMs run on: the VM workload (not its Secrets, Service and
    policy) waits for it to be Available. None when the cluster's KubeVirt is not in this program."""
    cloud_init_template: str | pulumi.Output[str] | None = None
    """cloud-init user data where another resource or a secret config value gives it
    (`config.require_secret`): overrides `spec.vmConfig.cloudInitTemplate`, which may then be
    left out. Stored only as a Pulumi secret, whatever is given."""
    ssh_authorized_keys: str | pulumi.Output[str] | None = None
    """Public keys, one per line, where another resource gives them (e.g.
    `tls.PrivateKey(...).public_key_openssh`): override `spec.vmConfig.sshAuthorizedKeys` (and,
    as that key does, add the SSH-key Secret and the VM's access credentials). Stored only as a
    Pulumi secret, whatever is given."""


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
        # The secret fields given (checked now, or once their Output resolves), by field name.
        given = {field: checked_input(value, lambda known, field=field, model=model: getattr(
                     validated(model, {model.model_fields[field].alias: known}, where, prefix=""), field))
                 for field, model in SECRET_FIELDS.items() if (value := getattr(args, field)) is not None}
        runtime = as_spec(RuntimeSpec, _with_placeholders(args.spec, given), where, tenant=tenant)
        one_of(runtime.tenant or "", tenant, where, "tenant")
        vm = runtime.vm_config
        if vm is None:
            raise ConfigError(f"{where}: runtime {runtime.id!r} has no vmConfig; a VM environment needs one")
        if "ssh_authorized_keys" in given and vm.ssh_authorized_keys is None:  # the field adds the SSH-key objects
            vm = vm.model_copy(update={"ssh_authorized_keys": SecretValue(None)})
            runtime = runtime.model_copy(update={"vm_config": vm})
        self._spec = runtime
        values: dict[str, tuple[str, SecretValue | str | pulumi.Output[str]]] = {
            cloud_init_secret_name(runtime): (USER_DATA_KEY, given.get("cloud_init_template", vm.cloud_init_template))}
        if vm.ssh_authorized_keys is not None:
            values[ssh_secret_name(runtime)] = (AUTHORIZED_KEYS_KEY, given.get("ssh_authorized_keys", vm.ssh_authorized_keys))
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


def _with_placeholders(spec: Any, given: dict[str, Any]) -> Any:
    """A mapping spec with a sealed placeholder where a secret field gives what vmConfig leaves
    out (a model spec has its cloud-init already; the real value replaces it in the Secret)."""
    if "cloud_init_template" not in given or not isinstance(spec, dict):
        return spec
    key = "vmConfig" if "vmConfig" in spec else "vm_config"
    vm = spec.get(key)
    if not isinstance(vm, dict) or "cloudInitTemplate" in vm or "cloud_init_template" in vm:
        return spec
    return {**spec, key: {**vm, "cloudInitTemplate": SecretValue(None)}}


def _with_secret(manifest: Manifest, key: str, value: SecretValue | str | pulumi.Output[str]) -> Manifest:
    if not isinstance(value, SecretValue):  # an args field: checked, and a secret whatever was given
        return {**manifest, "stringData": {key: pulumi.Output.secret(value)}}
    # Under the engine every secret is decrypted (the loader rejects sealed ones there); a
    # sealed one means a spec read offline (tests under mocks): keep the redacted placeholder.
    text = manifest["stringData"][key] if value.sealed else value.reveal()
    return {**manifest, "stringData": {key: pulumi.Output.secret(text)}}
