"""Where checked objects come from: multi-document YAML files, or a rendered stack.

Each object keeps a location (file and line) so that reports, and code-scanning
annotations built from SARIF, point at the line a reviewer has to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..inputs import load_documents as load_yaml_documents
from ..manifests.common import DOMAIN
from ..specs.layers import Layered
from ..specs.loader import load_layered
from .rule import Manifest
from .workloads import POD_TEMPLATE_PATHS, dig, labels


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


def _require_pod_shape(manifest: dict, where: str) -> None:
    """The pod spec fields the security rules read. A privileged container hidden in a
    mapping where Kubernetes wants a list would otherwise be skipped, and the check pass."""
    path = POD_TEMPLATE_PATHS.get(manifest["kind"])
    if path is None:
        return
    node: object = manifest
    for depth, key in enumerate((*path, "spec")):
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return  # nothing to check (a rule may still flag what is missing)
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {'.'.join((*path, 'spec')[: depth + 1])} must be a mapping")
    spec_path = ".".join((*path, "spec"))
    for field in ("initContainers", "containers", "ephemeralContainers", "volumes"):
        items = node.get(field)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            raise ConfigError(f"{where}: {spec_path}.{field} must be a list of mappings")
        for index, item in enumerate(items or []):
            if not isinstance(item.get("securityContext", {}), dict):
                raise ConfigError(f"{where}: {spec_path}.{field}[{index}].securityContext must be a mapping")
    if not isinstance(node.get("securityContext", {}), dict):
        raise ConfigError(f"{where}: {spec_path}.securityContext must be a mapping")


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
