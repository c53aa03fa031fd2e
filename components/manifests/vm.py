"""VM environments: a VirtualMachinePool (or one VirtualMachine) per kubevirt-vm runtime,
with its cloud-init Secret, SSH key Secret, Service and NetworkPolicy.

Secret values never enter these manifests: the Secrets carry a redacted placeholder,
and the component puts the real value in as a Pulumi secret. Render output is
therefore safe to print, diff and review.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..specs.runtime import DiskSpec, RuntimeSpec, VmConfig
from ..specs.secrets import REDACTED
from .common import DOMAIN, SKIP_AWAIT, Manifest, obj
from .kubevirt import KUBEVIRT_API_VERSION, POOL_API_VERSION
from .sandbox_template import network_policy

SSH_PORT = 22
USER_DATA_KEY = "userdata"  # the key KubeVirt reads from a cloudInitNoCloud secretRef
AUTHORIZED_KEYS_KEY = "authorized_keys"
SECRET_SOURCE = f"{DOMAIN}/secret-source"
LAUNCHER_LABEL = {"kubevirt.io": "virt-launcher"}  # set by KubeVirt on every virt-launcher pod


def runtime_selector(runtime: RuntimeSpec) -> dict[str, str]:
    return {f"{DOMAIN}/runtime": runtime.id}


def runtime_labels(runtime: RuntimeSpec) -> dict[str, str]:
    return {**runtime.labels, "app.kubernetes.io/part-of": "sandbox-infra", **runtime_selector(runtime)}


def cloud_init_secret_name(runtime: RuntimeSpec) -> str:
    return f"{runtime.id}-cloud-init"


def ssh_secret_name(runtime: RuntimeSpec) -> str:
    return f"{runtime.id}-ssh-keys"


def data_volume_name(runtime: RuntimeSpec, disk: str) -> str:
    return f"{runtime.id}-{disk}"


def build_vm_environment(runtime: RuntimeSpec) -> list[Manifest]:
    vm = _vm_config(runtime)
    ns, labels = runtime.tenant, runtime_labels(runtime)
    secret_note = {SECRET_SOURCE: "Pulumi secret from stack config; rendered output never holds the value"}
    manifests = [
        obj("v1", "Secret", cloud_init_secret_name(runtime), ns, labels, secret_note,
            type="Opaque", stringData={USER_DATA_KEY: REDACTED}),
    ]
    if vm.ssh_authorized_keys is not None:
        manifests.append(obj("v1", "Secret", ssh_secret_name(runtime), ns, labels, secret_note,
                             type="Opaque", stringData={AUTHORIZED_KEYS_KEY: REDACTED}))
    if runtime.network.management == "Managed":
        manifests.append(build_vm_network_policy(runtime))
    # Like the VM itself, never block `pulumi up` on the VM booting: pulumi-kubernetes would
    # wait up to 10 minutes for the Service's endpoints, which only a running VM provides.
    manifests.append(obj("v1", "Service", runtime.id, ns, labels, {SKIP_AWAIT: "true"}, spec={
        "type": "ClusterIP",
        "selector": _pod_selector(runtime),
        "ports": [{"name": name, "port": port, "targetPort": port, "protocol": "TCP"} for name, port in _ports(runtime)],
    }))
    manifests.append(build_vm_workload(runtime))
    return manifests


def build_vm_network_policy(runtime: RuntimeSpec) -> Manifest:
    """Default deny for the VM's launcher pods, then the runtime's allowlist: ingress to the
    agent (and SSH) port from the allowed namespaces, egress to DNS and the allowed CIDRs."""
    rules = network_policy(runtime.network, runtime.tenant, _vm_config(runtime).port)
    for rule in rules["ingress"]:
        rule["ports"] = [{"port": port, "protocol": "TCP"} for _name, port in _ports(runtime)]
    return obj("networking.k8s.io/v1", "NetworkPolicy", f"{runtime.id}-vm", runtime.tenant, runtime_labels(runtime), spec={
        "podSelector": {"matchLabels": runtime_selector(runtime)},
        "policyTypes": ["Ingress", "Egress"],
        **rules,
    })


def build_vm_workload(runtime: RuntimeSpec) -> Manifest:
    vm = _vm_config(runtime)
    annotations = {SKIP_AWAIT: "true", **runtime.annotations}  # a VM boots in 30-120 s; never block `pulumi up` on it
    if runtime.network.external_enforcer:
        annotations[f"{DOMAIN}/egress-enforcer"] = runtime.network.external_enforcer
    if vm.mode == "single":
        return obj(KUBEVIRT_API_VERSION, "VirtualMachine", runtime.id, runtime.tenant, runtime_labels(runtime),
                   annotations, spec=_vm_spec(runtime))
    replicas = runtime.warm.replicas if runtime.warm is not None else 0
    recreate = runtime.warm is not None and runtime.warm.update_strategy == "Recreate"
    return obj(POOL_API_VERSION, "VirtualMachinePool", runtime.id, runtime.tenant, runtime_labels(runtime), annotations, spec={
        "replicas": replicas,
        "selector": {"matchLabels": runtime_selector(runtime)},
        "virtualMachineTemplate": {"metadata": {"labels": runtime_labels(runtime)}, "spec": _vm_spec(runtime)},
        # OnReplenish -> opportunistic: running VMs keep their config until restarted (no session cut).
        "updateStrategy": {"proactive": {}} if recreate else {"opportunistic": {}},
    })


def _vm_config(runtime: RuntimeSpec) -> VmConfig:
    if runtime.vm_config is None or runtime.tenant is None:
        raise ConfigError(f"sandbox-infra:runtimes: runtime {runtime.id!r} is not a kubevirt-vm runtime (needs vmConfig and tenant)")
    return runtime.vm_config


def _ports(runtime: RuntimeSpec) -> list[tuple[str, int]]:
    vm = _vm_config(runtime)
    ports = [("agent", vm.port)]
    if vm.ssh_authorized_keys is not None and vm.port != SSH_PORT:
        ports.append(("ssh", SSH_PORT))
    return ports


def _pod_selector(runtime: RuntimeSpec) -> dict[str, str]:
    selector = {**LAUNCHER_LABEL, **runtime_selector(runtime)}
    if _vm_config(runtime).mode == "single":
        selector["kubevirt.io/domain"] = runtime.id
    return selector


def _vm_spec(runtime: RuntimeSpec) -> dict[str, Any]:
    vm = _vm_config(runtime)
    template_labels = runtime_labels(runtime)
    if vm.mode == "single":
        template_labels["kubevirt.io/domain"] = runtime.id  # the VM's launcher pod, as the Service selects it
    spec: dict[str, Any] = {"runStrategy": vm.run_strategy}
    if vm.instancetype is not None:
        spec["instancetype"] = vm.instancetype.model_dump(by_alias=True, exclude_none=True)
    if vm.preference is not None:
        spec["preference"] = vm.preference.model_dump(by_alias=True, exclude_none=True)
    if vm.disks:
        spec["dataVolumeTemplates"] = [_data_volume_template(runtime, disk) for disk in vm.disks]
    spec["template"] = {"metadata": {"labels": template_labels}, "spec": _vmi_spec(runtime)}
    return spec


def _vmi_spec(runtime: RuntimeSpec) -> dict[str, Any]:
    vm = _vm_config(runtime)
    disks = [
        {"name": "rootdisk", "bootOrder": 1, "disk": {"bus": "virtio"}},
        {"name": "cloudinit", "disk": {"bus": "virtio"}},
        *({"name": d.name, "disk": {"bus": "virtio"}} for d in vm.disks),
    ]
    volumes = [
        {"name": "rootdisk", "containerDisk": {"image": vm.container_disk_image}},
        # Only a secretRef: inline userData / userDataBase64 would put the secret into the VM object.
        {"name": "cloudinit", "cloudInitNoCloud": {"secretRef": {"name": cloud_init_secret_name(runtime)}}},
        *({"name": d.name, "dataVolume": {"name": data_volume_name(runtime, d.name)}} for d in vm.disks),
    ]
    domain: dict[str, Any] = {
        "devices": {
            "disks": disks,
            "interfaces": [{
                "name": "default",
                "masquerade": {},
                # Only these ports are forwarded into the guest.
                "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in _ports(runtime)],
            }],
        },
    }
    if vm.cpu is not None and vm.memory is not None:
        memory, cpu = str(vm.memory), str(vm.cpu)
        domain["cpu"] = {"cores": vm.cpu}
        domain["memory"] = {"guest": memory}
        # Explicit requests and limits: tenant quotas demand limits, and LimitRange
        # defaults (1Gi) would otherwise undercut the guest memory.
        domain["resources"] = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    spec: dict[str, Any] = {
        "domain": domain,
        "networks": [{"name": "default", "pod": {}}],
        "volumes": volumes,
    }
    if vm.ssh_authorized_keys is not None:
        spec["accessCredentials"] = [{"sshPublicKey": {
            "source": {"secret": {"secretName": ssh_secret_name(runtime)}},
            "propagationMethod": {"noCloud": {}},
        }}]
    return spec


def _data_volume_template(runtime: RuntimeSpec, disk: DiskSpec) -> dict[str, Any]:
    storage: dict[str, Any] = {"accessModes": list(disk.access_modes), "resources": {"requests": {"storage": str(disk.size)}}}
    if disk.storage_class_name:
        storage["storageClassName"] = disk.storage_class_name
    source = {"registry": {"url": f"docker://{disk.image}"}} if disk.image else {"blank": {}}
    return {
        "metadata": {"name": data_volume_name(runtime, disk.name), "labels": runtime_labels(runtime)},
        "spec": {"storage": storage, "source": source},
    }
