"""KubeVirt rules: VMs that cannot reach the host, and an operator install that keeps data.

Shapes follow the upstream v1.9.0 API (kubevirt.io/v1 VirtualMachine and
VirtualMachineInstance, pool.kubevirt.io/v1beta1 VirtualMachinePool, kubevirt.io/v1
KubeVirt); see ../shared/upstream/kubevirt/v1.9.0/api/openapi-spec/swagger.json.
"""

from __future__ import annotations

from collections.abc import Iterator

from .cel import literal
from .rule import Context, Manifest, RuleFamily, Violation
from .workloads import VM_KINDS, as_dict, as_list, dig, group_of, vmi_specs, vmi_volumes

FAMILY = RuleFamily("kubevirt")
KUBEVIRT_CR = frozenset({"KubeVirt"})
BLOCK_UNINSTALL = "BlockUninstallIfWorkloadsExist"


def _is_kubevirt_cr(manifest: Manifest) -> bool:
    return manifest.get("kind") == "KubeVirt" and group_of(manifest) == "kubevirt.io"


@FAMILY.object_rule(
    "kubevirt-no-host-disk", severity="critical", kinds=VM_KINDS,
    description="VMs may not use hostDisk volumes: they read and write files on the node.",
    remediation="Use a containerDisk, a dataVolume or a persistentVolumeClaim instead of hostDisk.",
    cel="variables.vmVolumes.all(v, !has(v.hostDisk))",
)
def no_host_disk(manifest: Manifest, context: Context) -> Iterator[str]:
    for vmi in vmi_specs(manifest):
        for volume in vmi_volumes(vmi):
            if "hostDisk" in volume:
                yield f"{vmi.path}: volume {volume.get('name', '?')!r} is a hostDisk at {dig(volume, 'hostDisk', 'path')}"


def _device_names(manifest: Manifest) -> Iterator[tuple[str, str]]:
    """(field, device name) of every GPU and host device a VM requests."""
    for vmi in vmi_specs(manifest):
        devices = as_dict(dig(vmi.spec, "domain", "devices"))
        for field in ("gpus", "hostDevices"):
            for device in as_list(devices.get(field)):
                device = as_dict(device)
                name = device.get("deviceName") or (f"resource claim {device['claimName']}" if device.get("claimName") else "?")
                yield f"{vmi.path}.domain.devices.{field}[{device.get('name', '?')}]", str(name)


def _permitted_devices(manifest: Manifest) -> Iterator[tuple[str, str]]:
    permitted = as_dict(dig(manifest, "spec", "configuration", "permittedHostDevices"))
    for field, key in (("pciHostDevices", "resourceName"), ("mediatedDevices", "resourceName"), ("usb", "resourceName")):
        for device in as_list(permitted.get(field)):
            yield f"spec.configuration.permittedHostDevices.{field}", str(as_dict(device).get(key, "?"))


def _host_devices_cel(allowed: list[str]) -> str:
    """_device_names (VMs) and _permitted_devices (the KubeVirt CR) in CEL."""
    devices = "variables.vmiSpec.?domain.?devices"
    name = ("d.?deviceName.orValue('') != '' ? d.deviceName"
            " : d.?claimName.orValue('') != '' ? 'resource claim ' + d.claimName : '?'")
    permitted = "object.?spec.?configuration.?permittedHostDevices"
    fields = ", ".join(f"{permitted}.?{f}.orValue([])" for f in ("pciHostDevices", "mediatedDevices", "usb"))
    return (f"object.kind == 'KubeVirt' ? [{fields}].all(l, l.all(d, d.?resourceName.orValue('?') in {literal(allowed)}))"
            f" : [{devices}.?gpus.orValue([]), {devices}.?hostDevices.orValue([])].all(l, l.all(d, ({name}) in {literal(allowed)}))")


@FAMILY.object_rule(
    "kubevirt-host-devices-allowlisted", severity="high", kinds=VM_KINDS | KUBEVIRT_CR,
    settings=("allowed_host_devices",),
    description="No host devices or GPUs passed into VMs unless the stack allowlists them (policy.allowedHostDevices).",
    remediation="Remove the device, or add its resource name (e.g. nvidia.com/GA102GL_A10) to policy.allowedHostDevices.",
    cel=lambda context: _host_devices_cel(context.policy.allowed_host_devices),
)
def host_devices_allowlisted(manifest: Manifest, context: Context) -> Iterator[str]:
    allowed = set(context.policy.allowed_host_devices)
    found = _permitted_devices(manifest) if _is_kubevirt_cr(manifest) else _device_names(manifest)
    for where, name in found:
        if name not in allowed:
            yield f"{where}: device {name} is not in policy.allowedHostDevices"


CLOUD_INIT_SOURCES = ("cloudInitNoCloud", "cloudInitConfigDrive")
INLINE_FIELDS = ("userData", "userDataBase64", "networkData", "networkDataBase64")


@FAMILY.object_rule(
    "kubevirt-cloud-init-from-secret", severity="high", kinds=VM_KINDS,
    description="Cloud-init comes only from Secrets (secretRef), never inline: inline user data lands in "
                "manifests, Pulumi state and the VM object readable by anyone who can get VMs.",
    remediation="Put the user data into a Secret and reference it with cloudInitNoCloud.secretRef "
                "(and networkDataSecretRef for network data).",
    cel=f"variables.vmVolumes.all(v, {literal(CLOUD_INIT_SOURCES)}.all(s, !(s in v)"
        f" || ({literal(INLINE_FIELDS)}.all(f, v[s][?f].orValue('') == '') && v[s].?secretRef.?name.orValue('') != '')))",
)
def cloud_init_from_secret(manifest: Manifest, context: Context) -> Iterator[str]:
    for vmi in vmi_specs(manifest):
        for volume in vmi_volumes(vmi):
            for source in CLOUD_INIT_SOURCES:
                if source not in volume:
                    continue
                config = as_dict(volume[source])
                inline = [field for field in INLINE_FIELDS if config.get(field)]
                if inline:
                    yield f"{vmi.path}: volume {volume.get('name', '?')!r} has inline {source}.{', '.join(inline)}"
                if not as_dict(config.get("secretRef")).get("name"):
                    yield f"{vmi.path}: volume {volume.get('name', '?')!r} {source} has no secretRef for its user data"


@FAMILY.object_rule(
    "kubevirt-vm-resource-limits", severity="medium", kinds=VM_KINDS,
    description="VMs must be bounded: CPU and memory limits, or an instancetype that sizes them.",
    remediation="Set spec.domain.resources.limits.cpu and .memory in the VM template, or reference an instancetype.",
    cel="!variables.hasVmiSpec || variables.vmSpec.?instancetype.?name.orValue('') != ''"
        " || ['cpu', 'memory'].all(n, n in variables.vmiSpec.?domain.?resources.?limits.orValue({}))",
)
def vm_resource_limits(manifest: Manifest, context: Context) -> Iterator[str]:
    for vmi in vmi_specs(manifest):
        if as_dict(vmi.vm_spec.get("instancetype")).get("name"):
            continue
        limits = as_dict(dig(vmi.spec, "domain", "resources", "limits"))
        missing = [name for name in ("cpu", "memory") if name not in limits]
        if missing:
            yield f"{vmi.path}.domain.resources.limits does not set {' and '.join(missing)} (and no instancetype is referenced)"


@FAMILY.object_rule(
    "kubevirt-feature-gates-allowlisted", severity="high", kinds=KUBEVIRT_CR,
    settings=("allowed_kubevirt_feature_gates",),
    description="KubeVirt feature gates stay within the allowlist (policy.allowedKubevirtFeatureGates); gates "
                "such as Root, HostDisk, HostDevices or Sidecar weaken the node boundary.",
    remediation="Remove the gate from spec.configuration.developerConfiguration.featureGates, or allowlist it "
                "deliberately in policy.allowedKubevirtFeatureGates.",
    cel=lambda context: "object.?spec.?configuration.?developerConfiguration.?featureGates.orValue([])"
        f".all(g, g in {literal(context.policy.allowed_kubevirt_feature_gates)})",
)
def feature_gates_allowlisted(manifest: Manifest, context: Context) -> Iterator[Violation | str]:
    if not _is_kubevirt_cr(manifest):
        return
    allowed = set(context.policy.allowed_kubevirt_feature_gates)
    gates = as_list(dig(manifest, "spec", "configuration", "developerConfiguration", "featureGates"))
    for gate in gates:
        if gate not in allowed:
            yield Violation(f"feature gate {gate} is not in policy.allowedKubevirtFeatureGates", str(gate))


@FAMILY.object_rule(
    "kubevirt-uninstall-blocks-on-workloads", severity="high", kinds=KUBEVIRT_CR,
    description=f"The KubeVirt CR must set uninstallStrategy: {BLOCK_UNINSTALL}, so deleting it never tears "
                "down running VMs and their disks.",
    remediation=f"Set spec.uninstallStrategy: {BLOCK_UNINSTALL}.",
    cel=f"object.?spec.?uninstallStrategy.orValue('') == {literal(BLOCK_UNINSTALL)}",
)
def uninstall_blocks_on_workloads(manifest: Manifest, context: Context) -> Iterator[str]:
    if not _is_kubevirt_cr(manifest):
        return
    strategy = dig(manifest, "spec", "uninstallStrategy")
    if strategy != BLOCK_UNINSTALL:
        yield f"spec.uninstallStrategy is {strategy or 'not set'}"


@FAMILY.object_rule(
    "kubevirt-no-emulation-in-prod", severity="high", kinds=KUBEVIRT_CR, settings=("environment",),
    description="Software emulation (useEmulation) is for dev clusters without /dev/kvm, never for prod.",
    remediation="Remove spec.configuration.developerConfiguration.useEmulation on prod clusters (they need KVM).",
    cel=lambda context: "object.?spec.?configuration.?developerConfiguration.?useEmulation.orValue(false) != true"
        if context.environment == "prod" else "true",
)
def no_emulation_in_prod(manifest: Manifest, context: Context) -> Iterator[str]:
    if context.environment != "prod" or not _is_kubevirt_cr(manifest):
        return
    if dig(manifest, "spec", "configuration", "developerConfiguration", "useEmulation") is True:
        yield "spec.configuration.developerConfiguration.useEmulation is true in a prod stack"
