"""Where the security-relevant parts live in each kind of object.

A pod spec may be embedded at different paths (a Deployment's `spec.template`,
a SandboxTemplate's `spec.podTemplate`, ...), and a KubeVirt VM spec sits inside a
VirtualMachine, a VirtualMachinePool or a VirtualMachineInstance. Rules ask these
helpers instead of knowing the paths, so a rule written once covers every kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .rule import Manifest
from .vocabulary import TRUST_ANNOTATION

AGENT_SANDBOX_GROUPS = ("agents.x-k8s.io", "extensions.agents.x-k8s.io")
KUBEVIRT_GROUPS = ("kubevirt.io", "pool.kubevirt.io")

# Kind -> path of the pod *template* (an object with `metadata` and `spec`; () for a Pod itself).
_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "PodTemplate": ("template",),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Sandbox": ("spec", "podTemplate"),
    "SandboxTemplate": ("spec", "podTemplate"),
}
POD_KINDS = frozenset(_POD_TEMPLATE_PATHS)
POD_TEMPLATE_PATHS = _POD_TEMPLATE_PATHS

# Kind -> path of the VirtualMachineInstance template (`metadata` and `spec`; () for a VMI itself).
_VMI_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "VirtualMachineInstance": (),
    "VirtualMachine": ("spec", "template"),
    "VirtualMachinePool": ("spec", "virtualMachineTemplate", "spec", "template"),
    "VirtualMachineInstanceReplicaSet": ("spec", "template"),
}
VM_KINDS = frozenset(_VMI_TEMPLATE_PATHS)
VMI_TEMPLATE_PATHS = _VMI_TEMPLATE_PATHS

# Objects that run (or are the template of) untrusted agent code.
SANDBOX_POD_KINDS = frozenset({"Sandbox", "SandboxTemplate"})
SANDBOX_KINDS = SANDBOX_POD_KINDS | {"SandboxWarmPool", "SandboxClaim"} | VM_KINDS
WARM_POOL_KINDS = frozenset({"SandboxWarmPool", "VirtualMachinePool"})


def dig(value: Any, *path: str | int) -> Any:
    """`value[path[0]][path[1]]...`, or None when any step is missing."""
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def group_of(manifest: Manifest) -> str:
    api_version = str(manifest.get("apiVersion", ""))
    return api_version.rpartition("/")[0]


def describe(manifest: Manifest) -> str:
    meta = as_dict(manifest.get("metadata"))
    name = f"{meta['namespace']}/{meta.get('name', '?')}" if meta.get("namespace") else meta.get("name", "?")
    return f"{manifest.get('kind', '?')} {name}"


def annotations(manifest: Manifest) -> dict[str, Any]:
    return as_dict(dig(manifest, "metadata", "annotations"))


def labels(manifest: Manifest) -> dict[str, Any]:
    return as_dict(dig(manifest, "metadata", "labels"))


# --- pods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodSpecAt:
    path: str
    """Dotted path of the pod spec inside the object, for messages."""
    spec: dict[str, Any]
    metadata: dict[str, Any]
    """The pod (template) metadata: AppArmor annotations and labels live here."""


def _embedded(manifest: Manifest, paths: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], dict, dict] | None:
    """(path, spec, metadata) of the template embedded in the object, if its kind has one."""
    path = paths.get(str(manifest.get("kind")))
    template = None if path is None else dig(manifest, *path)
    spec = dig(template, "spec")
    return (path, spec, as_dict(dig(template, "metadata"))) if path is not None and isinstance(spec, dict) else None


def pod_specs(manifest: Manifest) -> list[PodSpecAt]:
    found = _embedded(manifest, _POD_TEMPLATE_PATHS)
    if found is None:
        return []
    path, spec, metadata = found
    return [PodSpecAt(".".join((*path, "spec")), spec, metadata)]


@dataclass(frozen=True)
class ContainerAt:
    field: str
    """containers, initContainers or ephemeralContainers."""
    container: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.container.get("name", "?"))

    @property
    def security(self) -> dict[str, Any]:
        return as_dict(self.container.get("securityContext"))

    def __str__(self) -> str:
        kind = {"containers": "container", "initContainers": "init container"}.get(self.field, "ephemeral container")
        return f"{kind} {self.name!r}"


def containers(pod: PodSpecAt) -> list[ContainerAt]:
    return [
        ContainerAt(field, container)
        for field in ("initContainers", "containers", "ephemeralContainers")
        for container in as_list(pod.spec.get(field))
        if isinstance(container, dict)
    ]


def pod_security(pod: PodSpecAt) -> dict[str, Any]:
    return as_dict(pod.spec.get("securityContext"))


def effective(pod: PodSpecAt, container: ContainerAt, key: str) -> Any:
    """A security setting as the kubelet applies it: the container's value wins over the pod's."""
    value = container.security.get(key)
    return pod_security(pod).get(key) if value is None else value


# --- KubeVirt VMs -----------------------------------------------------------------------


@dataclass(frozen=True)
class VmiSpecAt:
    path: str
    spec: dict[str, Any]
    """A VirtualMachineInstanceSpec."""
    metadata: dict[str, Any]
    vm_spec: dict[str, Any]
    """The enclosing VirtualMachineSpec (instancetype, dataVolumeTemplates), or {} for a bare VMI."""


def vmi_specs(manifest: Manifest) -> list[VmiSpecAt]:
    found = _embedded(manifest, _VMI_TEMPLATE_PATHS) if group_of(manifest) in KUBEVIRT_GROUPS else None
    if found is None:
        return []
    path, spec, metadata = found
    vm_spec = as_dict(dig(manifest, *path[:-1])) if path else {}
    return [VmiSpecAt(".".join((*path, "spec")), spec, metadata, vm_spec)]


def vmi_volumes(vmi: VmiSpecAt) -> Iterator[dict[str, Any]]:
    for volume in as_list(vmi.spec.get("volumes")):
        if isinstance(volume, dict):
            yield volume


# --- images and metadata of sandbox workloads ---------------------------------------------


def images(manifest: Manifest) -> Iterator[tuple[str, str]]:
    """(where, image reference) for every container and VM container disk of the object."""
    for pod in pod_specs(manifest):
        for container in containers(pod):
            yield str(container), str(container.container.get("image", ""))
    for vmi in vmi_specs(manifest):
        for volume in vmi_volumes(vmi):
            disk = as_dict(volume.get("containerDisk"))
            if "image" in disk:
                yield f"containerDisk volume {volume.get('name', '?')!r}", str(disk["image"])


def metadata_maps(manifest: Manifest) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, labels-or-annotations) of the object and of every template it embeds."""
    for field in ("labels", "annotations"):
        yield f"metadata.{field}", as_dict(dig(manifest, "metadata", field))
    for pod in pod_specs(manifest):
        prefix = pod.path.removesuffix(".spec")
        for field in ("labels", "annotations"):
            yield f"{prefix}.metadata.{field}", as_dict(pod.metadata.get(field))
    for vmi in vmi_specs(manifest):
        prefix = vmi.path.removesuffix(".spec")
        for field in ("labels", "annotations"):
            yield f"{prefix}.metadata.{field}", as_dict(vmi.metadata.get(field))
    if manifest.get("kind") == "VirtualMachinePool":
        for field in ("labels", "annotations"):
            yield f"spec.virtualMachineTemplate.metadata.{field}", as_dict(
                dig(manifest, "spec", "virtualMachineTemplate", "metadata", field))
    if manifest.get("kind") == "SandboxClaim":
        for field in ("labels", "annotations"):
            yield f"spec.additionalPodMetadata.{field}", as_dict(dig(manifest, "spec", "additionalPodMetadata", field))


def env_vars(manifest: Manifest) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, env entry) of every container, and of a SandboxClaim's injected env."""
    for pod in pod_specs(manifest):
        for container in containers(pod):
            for env in as_list(container.container.get("env")):
                if isinstance(env, dict):
                    yield str(container), env
    if manifest.get("kind") == "SandboxClaim":
        for env in as_list(dig(manifest, "spec", "env")):
            if isinstance(env, dict):
                yield "spec.env", env


def resource_names(pod: PodSpecAt) -> set[str]:
    names: set[str] = set()
    for container in containers(pod):
        resources = as_dict(container.container.get("resources"))
        for section in ("requests", "limits"):
            names.update(as_dict(resources.get(section)))
    return names


def is_trusted(manifest: Manifest) -> bool:
    """Only an explicit `trusted` marks a workload as running vetted code; anything else
    (including hand-written manifests without the annotation) counts as untrusted."""
    return annotations(manifest).get(TRUST_ANNOTATION) == "trusted"
