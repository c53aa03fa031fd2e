"""Where checked objects come from: multi-document YAML files, or a rendered stack.

Each object keeps a location (file and line) so that reports, and code-scanning
annotations built from SARIF, point at the line a reviewer has to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sandbox_policy.vocabulary import Manifest
from sandbox_policy.workloads import KUBEVIRT_GROUPS, POD_TEMPLATE_PATHS, VMI_TEMPLATE_PATHS, dig, labels

from components.errors import ConfigError
from components.inputs import load_documents as load_yaml_documents
from components.manifests.common import DOMAIN
from components.specs.layers import Layered
from components.specs.loader import load_layered


@dataclass(frozen=True)
class Located:
    manifest: Manifest
    uri: str | None
    """Path of the source file as given (relative paths stay relative), None for stdin."""
    line: int


def load_documents(text: str, uri: str | None, label: str) -> list[Located]:
    """Every Kubernetes object of a multi-document YAML text; `kind: List` documents
    (as `kubectl get -o yaml` prints them) contribute their items. Anything that is not
    a Kubernetes object is an input error: a gate must never pass what it could not read."""
    located: list[Located] = []
    for number, document in enumerate(load_yaml_documents(text, label), start=1):
        if document.data is None:
            continue
        where = f"{label}: document {number} (line {document.line})"
        manifest = document.data
        if isinstance(manifest, dict) and isinstance(manifest.get("kind"), str) and manifest["kind"].endswith("List") \
                and "items" in manifest:
            items = manifest["items"]
            if not isinstance(items, list):
                raise ConfigError(f"{where}: items must be a list of Kubernetes objects")
            item_nodes = next((v.value for k, v in document.node.value if k.value == "items"), [])
            for index, (item, item_node) in enumerate(zip(items, item_nodes, strict=True)):
                _require_object(item, f"{where}: items[{index}] (line {item_node.start_mark.line + 1})")
                located.append(Located(item, uri, item_node.start_mark.line + 1))
            continue
        _require_object(manifest, where)
        located.append(Located(manifest, uri, document.line))
    return located


def _require_object(manifest: object, where: str) -> None:
    """The shape every rule may rely on: string apiVersion and kind, a metadata mapping
    with a string name and string labels and annotations."""
    if not isinstance(manifest, dict):
        raise ConfigError(f"{where}: is not a Kubernetes object; expected a mapping with apiVersion and kind")
    for key in ("apiVersion", "kind"):
        if key not in manifest:
            raise ConfigError(f"{where}: {key} is missing; a Kubernetes object needs apiVersion and kind")
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise ConfigError(f"{where}: {key} must be a non-empty string; a Kubernetes object needs apiVersion and kind")
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ConfigError(f"{where}: metadata must be a mapping")
    for key in ("name", "namespace", "generateName"):
        if key in metadata and not isinstance(metadata[key], str):
            raise ConfigError(f"{where}: metadata.{key} must be a string")
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ConfigError(f"{where}: metadata.{key} must be a mapping of strings to strings")
    _require_pod_shape(manifest, where)


# Fields the security rules read, by where they sit in a pod or VM template spec: a
# privileged container or an inline cloud-init hidden in a mapping where Kubernetes wants
# a list would otherwise be skipped by the rules, and the check pass.
_POD_SHAPE = {"initContainers": list, "containers": list, "ephemeralContainers": list, "volumes": list,
              "securityContext": dict}
_VMI_SHAPE = {"volumes": list, "networks": list, "domain": dict, "domain.devices": dict, "domain.devices.disks": list,
              "domain.devices.interfaces": list, "domain.devices.hostDevices": list, "domain.devices.gpus": list,
              "domain.resources": dict, "domain.resources.limits": dict}
_OTHER_SHAPE = {"KubeVirt": {"spec": dict, "spec.configuration": dict, "spec.configuration.developerConfiguration": dict,
                             "spec.configuration.developerConfiguration.featureGates": list}}


def _require_pod_shape(manifest: dict, where: str) -> None:
    kind = manifest["kind"]
    if kind in POD_TEMPLATE_PATHS:
        template, shape = POD_TEMPLATE_PATHS[kind], _POD_SHAPE
    elif kind in VMI_TEMPLATE_PATHS and manifest["apiVersion"].split("/")[0] in KUBEVIRT_GROUPS:
        template, shape = VMI_TEMPLATE_PATHS[kind], _VMI_SHAPE
    else:
        _require_fields(manifest, (), _OTHER_SHAPE.get(kind, {}), where)
        return
    spec = _require_fields(manifest, (), {".".join((*template[: i + 1],)): dict for i in range(len(template))}
                           | {".".join((*template, "spec")): dict}, where)
    if isinstance(spec, dict):
        _require_fields(spec, (*template, "spec"), shape, where)


def _require_fields(root: dict, prefix: tuple[str, ...], shape: dict[str, type], where: str) -> object:
    """Check each dotted field of `shape` that is present; lists must hold mappings (their
    items are objects: containers, volumes, ...) except feature gates. Returns the last field."""
    node: object = None
    for dotted, expected in shape.items():
        node = root
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue
        name = ".".join((*prefix, dotted))
        if not isinstance(node, expected):
            raise ConfigError(f"{where}: {name} must be a {'list' if expected is list else 'mapping'}")
        if expected is list and not dotted.endswith("featureGates"):
            for index, item in enumerate(node):
                if not isinstance(item, dict):
                    raise ConfigError(f"{where}: {name}[{index}] must be a mapping")
                if not isinstance(item.get("securityContext", {}), dict):
                    raise ConfigError(f"{where}: {name}[{index}].securityContext must be a mapping")
    return node


# Which section of the stack config an object comes from, so findings point at its entry.
_SECTION_BY_KIND = {
    "SandboxTemplate": "templates",
    "SandboxWarmPool": "warmPools",
    "HorizontalPodAutoscaler": "warmPools",  # the autoscaler of an SLO-sized pool, named after it
    "ScaledObject": "warmPools",
    "VirtualMachine": "runtimes",
    "VirtualMachinePool": "runtimes",
    "KubeVirt": "kubevirt",
}


def _section_and_name(manifest: Manifest) -> tuple[str, str]:
    name = str(dig(manifest, "metadata", "name") or "")
    kind = str(manifest.get("kind"))
    if kind in _SECTION_BY_KIND:
        return _SECTION_BY_KIND[kind], name
    tenant = labels(manifest).get(f"{DOMAIN}/tenant")
    if tenant:
        return "tenants", str(tenant)
    if labels(manifest).get("app.kubernetes.io/part-of") == "agent-sandbox":
        return "agentSandbox", ""
    return "", ""


def _defining_layer(layered: Layered, section: str, name: str, default: str) -> str:
    """The layer file that defines the named entry of a config section (the last one that
    names it: a cluster overriding a pool's replicas is where that pool's finding belongs)."""
    entries = layered.config.get(section)
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("name") == name:
                return layered.source_of((section, index, "name"))
    origins = [layer for path, layer in layered.origin.items() if path[:1] == (section,)]
    return default if default in origins or not origins else origins[-1]


def _line(lines: list[str], section: str, name: str) -> int:
    """The entry's `name:` line inside `sandbox-infra:<section>:`, else the section, else 1."""
    start = next((n for n, text in enumerate(lines) if re.match(rf"^\s*(?:[\w-]+:)?{section}:\s*$", text)), None)
    if not section or start is None:
        return 1
    entry = re.compile(rf"^\s*(- )?\s*name:\s*['\"]?{re.escape(name)}['\"]?\s*$") if name else None
    indent = len(lines[start]) - len(lines[start].lstrip())
    for number in range(start + 1, len(lines)):
        text = lines[number]
        if text.strip() and not text.startswith(" " * (indent + 1)) and not text.lstrip().startswith("-"):
            break  # the next key at the section's level: the section has ended
        if entry is not None and entry.match(text):
            return number + 1
    return start + 1


def stack_locations(stack: str, stacks_dir: Path, manifests: list[Manifest]) -> list[Located]:
    """Locate each rendered object at the config entry that produced it, in whichever layer
    (stack file, environment or project layer) defines it. Best effort: the entry's `name:`
    line, else its section, else the top of the stack file."""
    layered, source = load_layered(stack, stacks_dir)
    texts: dict[str, list[str]] = {}

    def locate(manifest: Manifest) -> Located:
        section, name = _section_and_name(manifest)
        layer = _defining_layer(layered, section, name, source) if section else source
        if layer not in texts:
            path = Path(layer) if Path(layer).is_absolute() else stacks_dir.parent / layer
            texts[layer] = path.read_text().splitlines() if path.is_file() else []
        return Located(manifest, layer, _line(texts[layer], section, name))

    return [locate(m) for m in manifests]
