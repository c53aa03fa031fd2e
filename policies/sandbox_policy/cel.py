"""CEL building blocks the rules' admission expressions share (admission.py turns them into
ValidatingAdmissionPolicies).

The variables mirror workloads.py: where a pod or VM spec is embedded in each kind is read
from the same tables, so the Python rules and their CEL find the same spec. A rule's CEL
names a variable as `variables.<name>`; the generator declares, per policy, the variables
its expression uses (and the ones those use), looking templates up only for the kinds that
policy matches.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .vocabulary import TRUST_ANNOTATION
from .workloads import POD_TEMPLATE_PATHS, VMI_TEMPLATE_PATHS


def literal(value: Any) -> str:
    """A CEL literal for a string, number, bool or list of them (JSON's syntax is CEL's here)."""
    return json.dumps(sorted(value) if isinstance(value, set | frozenset) else value)


def alternation(words: Any) -> str:
    """A regex group matching any of `words` literally."""
    return "(" + "|".join(re.escape(w) for w in sorted(words)) + ")"


_FIRST = frozenset({"Pod", "Sandbox", "SandboxTemplate", "VirtualMachine", "VirtualMachinePool"})


def _select(path: tuple[str, ...]) -> str:
    return "object" if not path else "object" + "".join(f".?{p}" for p in path) + ".orValue({})"


def _by_kind(paths: Mapping[str, tuple[str, ...] | None], kinds: frozenset[str] | None) -> str:
    """`object` at the path of its kind ({} for a kind with no path), for the policy's `kinds` only.

    Each matching policy evaluates this on every request, and an auditor reads it, so it says
    no more than the policy needs: one branch per distinct path (not per kind), no kind test
    at all when every kind the policy matches keeps the template at the same path, and Pods
    and sandboxes (what a sandbox cluster admits most) first."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for kind in sorted(paths, key=lambda k: k not in _FIRST):  # stable: table order otherwise
        path = paths[kind]
        if path is not None and (kinds is None or kind in kinds):
            groups.setdefault(path, []).append(kind)
    if kinds is not None and len(groups) == 1 and kinds <= set(*groups.values()):
        return _select(*groups)
    branches = [(f"object.kind == {literal(group[0])}" if len(group) == 1 else f"object.kind in {literal(group)}")
                + f" ? {_select(path)}" for path, group in groups.items()]
    return " : ".join([*branches, "{}"])


@functools.cache
def variables(kinds: frozenset[str] | None = None) -> Mapping[str, str]:
    """The shared variables, with the embedded templates looked up for `kinds` (None: every kind).
    The same for every render of every stack: built once per set of kinds (read-only)."""
    return MappingProxyType({
        # Pods: the template (metadata + spec) embedded in the object, wherever its kind keeps it.
        "pod": _by_kind(POD_TEMPLATE_PATHS, kinds),
        "hasPodSpec": "variables.pod.?spec.hasValue()",
        "podSpec": "variables.pod.?spec.orValue({})",
        "podMeta": "variables.pod.?metadata.orValue({})",
        "podSC": "variables.podSpec.?securityContext.orValue({})",
        "containers": "variables.podSpec.?initContainers.orValue([]) + variables.podSpec.?containers.orValue([])"
                      " + variables.podSpec.?ephemeralContainers.orValue([])",
        # KubeVirt: the VMI template and the VM spec around it (instancetype lives there), as
        # workloads.vmi_specs.
        "vmi": _by_kind(VMI_TEMPLATE_PATHS, kinds),
        "hasVmiSpec": "variables.vmi.?spec.hasValue()",
        "vmiSpec": "variables.vmi.?spec.orValue({})",
        "vmiMeta": "variables.vmi.?metadata.orValue({})",
        "vmSpec": _by_kind({kind: path[:-1] if path else None for kind, path in VMI_TEMPLATE_PATHS.items()}, kinds),
        "vmVolumes": "variables.vmiSpec.?volumes.orValue([])",
        # Every image the object runs: containers and VM container disks (workloads.images).
        "images": "variables.containers.map(c, c.?image.orValue(''))"
                  " + variables.vmVolumes.filter(v, has(v.containerDisk) && has(v.containerDisk.image))"
                  ".map(v, v.containerDisk.image)",
        "trusted": f"object.?metadata.?annotations[?{literal(TRUST_ANNOTATION)}].orValue('') == 'trusted'",
    })


def variables_used(expression: str, definitions: Mapping[str, str]) -> list[str]:
    """The variables `expression` needs, dependencies first (the order a policy declares them in)."""
    ordered: list[str] = []

    def visit(text: str) -> None:
        for name in re.findall(r"variables\.(\w+)", text):
            if name not in ordered:
                visit(definitions[name])
                if name not in ordered:
                    ordered.append(name)

    visit(expression)
    return ordered
