"""Layered stack config: project defaults < environment < cluster (the stack file).

A platform team writes what every cluster shares once (`stacks/layers/project.yaml`),
what differs per environment once (`stacks/layers/<environment>.yaml`, chosen by
`cluster.environment`), and only what is specific to a cluster in its own
`stacks/Pulumi.<stack>.yaml`. Layers use the stack-file format (`config:` with
`sandbox-infra:` keys) and merge like this:

- mappings merge key by key, the later layer winning;
- lists whose entries all have a `name` merge entry by entry (an environment can
  change `replicas` of the pool named `python` without repeating the pool);
- anything else (scalars, other lists) is replaced whole by the later layer.

Every effective value remembers the layer it came from, which
`config explain --stack NAME` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path_ = tuple[str | int, ...]

BUILT_IN = "built-in default"


@dataclass
class Layer:
    name: str
    config: dict[str, Any]


@dataclass
class Layered:
    """The merged config and, for every value set by a layer, which layer set it."""

    config: dict[str, Any] = field(default_factory=dict)
    origin: dict[Path_, str] = field(default_factory=dict)

    def source_of(self, path: Path_) -> str:
        """The layer that set the value at `path`; values no layer set are built-in defaults."""
        return self.origin.get(path, BUILT_IN)


def leaves(value: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every scalar (and every empty mapping or list) in a config tree, with its path."""
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
    if isinstance(value, list) and value:
        return [leaf for index, item in enumerate(value) for leaf in leaves(item, (*path, index))]
    return [(path, value)]


def duplicate_entries(value: Any, path: Path_ = ()) -> list[tuple[Path_, str, int]]:
    """Entries of named lists that repeat a `name` of the same list: (path of the name, the
    name, index of its first entry). Layers merge such lists by name, which would silently
    fold the two entries into one. A name that is not a string comes with index -1: such an
    entry cannot be merged by name, and a later layer would silently drop it."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += duplicate_entries(item, (*path, key))
    elif isinstance(value, list):
        first: dict[str, int] = {}
        for index, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(item, dict) and "name" in item and not isinstance(name, str):
                found.append(((*path, index, "name"), name, -1))
            elif isinstance(name, str):
                if name in first:
                    found.append(((*path, index, "name"), name, first[name]))
                first.setdefault(name, index)
            found += duplicate_entries(item, (*path, index))
    return found


def secure_values(value: Any, path: Path_ = ()) -> list[Path_]:
    """Paths of `{secure: ...}` values (Pulumi secrets) in a config tree."""
    if isinstance(value, dict):
        if "secure" in value:
            return [path]
        return [found for key, item in value.items() for found in secure_values(item, (*path, key))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in secure_values(item, (*path, index))]
    return []


def merge(layers: list[Layer]) -> Layered:
    result = Layered()
    for layer in layers:
        result.config = _merge(result.config, layer.config, (), layer.name, result.origin)
    return result


def _named_list(value: Any) -> bool:
    # Only string names merge entry by entry; anything else is replaced whole and left to validation.
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and isinstance(v.get("name"), str)
                                                           for v in value)


def _mark(path: Path_, value: Any, layer: str, origin: dict[Path_, str]) -> None:
    """`layer` set `value` at `path` whole: it is now the origin of every leaf below it."""
    for key in [k for k in origin if k[: len(path)] == path]:
        del origin[key]
    for leaf, _ in leaves(value, path):
        origin[leaf] = layer


def _merge(base: Any, override: Any, path: Path_, layer: str, origin: dict[Path_, str]) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value, (*path, key), layer, origin) if key in base else value
            if key not in base:
                _mark((*path, key), value, layer, origin)
        return merged
    if _named_list(base) and _named_list(override):
        merged_list = list(base)
        positions = {entry["name"]: index for index, entry in enumerate(base)}
        for entry in override:
            index = positions.get(entry["name"])
            if index is None:
                merged_list.append(entry)
                _mark((*path, len(merged_list) - 1), entry, layer, origin)
            else:
                merged_list[index] = _merge(base[index], entry, (*path, index), layer, origin)
        return merged_list
    _mark(path, override, layer, origin)
    return override
