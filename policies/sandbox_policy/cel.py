"""CEL building blocks the rules' admission expressions share (admission.py turns them into
ValidatingAdmissionPolicies).

The variables mirror workloads.py: where a pod or VM spec is embedded in each kind is read
from the same tables, so the Python rules and their CEL find the same spec. A rule's CEL
names a variable as `variables.<name>`; the generator declares, per policy, the variables
its expression uses (and the ones those use).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .vocabulary import TRUST_ANNOTATION
from .workloads import POD_TEMPLATE_PATHS, VMI_TEMPLATE_PATHS


def literal(value: Any) -> str:
    """A CEL literal for a string, number, bool or list of them (JSON's syntax is CEL's here)."""
    return json.dumps(sorted(value) if isinstance(value, set | frozenset) else value)


def alternation(words: Any) -> str:
    """A regex group matching any of `words` literally."""
    return "(" + "|".join(re.escape(w) for w in sorted(words)) + ")"


def _template_at(paths: dict[str, tuple[str, ...]]) -> str:
    """Nested conditional selecting the embedded template by kind ({} for other kinds)."""
    branches = [
        f"object.kind == {literal(kind)} ? " + ("object" if not path else "object" + "".join(f".?{p}" for p in path)
                                                 + ".orValue({})")
        for kind, path in paths.items()
    ]
    return " : ".join(branches) + " : {}"


def _vm_spec_at() -> str:
    """The VirtualMachineSpec around the VMI template (instancetype lives there), as workloads.vmi_specs."""
    branches = [
        f"object.kind == {literal(kind)} ? " + ("object" + "".join(f".?{p}" for p in path[:-1]) + ".orValue({})"
                                                 if path else "{}")
        for kind, path in VMI_TEMPLATE_PATHS.items()
    ]
    return " : ".join(branches) + " : {}"


VARIABLES: dict[str, str] = {
    # Pods: the template (metadata + spec) embedded in the object, wherever its kind keeps it.
    "pod": _template_at(POD_TEMPLATE_PATHS),
    "hasPodSpec": "variables.pod.?spec.hasValue()",
    "podSpec": "variables.pod.?spec.orValue({})",
    "podMeta": "variables.pod.?metadata.orValue({})",
    "podSC": "variables.podSpec.?securityContext.orValue({})",
    "containers": "variables.podSpec.?initContainers.orValue([]) + variables.podSpec.?containers.orValue([])"
                  " + variables.podSpec.?ephemeralContainers.orValue([])",
    # KubeVirt: the VMI template and the VM spec around it.
    "vmi": _template_at(VMI_TEMPLATE_PATHS),
    "hasVmiSpec": "variables.vmi.?spec.hasValue()",
    "vmiSpec": "variables.vmi.?spec.orValue({})",
    "vmiMeta": "variables.vmi.?metadata.orValue({})",
    "vmSpec": _vm_spec_at(),
    "vmVolumes": "variables.vmiSpec.?volumes.orValue([])",
    # Every image the object runs: containers and VM container disks (workloads.images).
    "images": "variables.containers.map(c, c.?image.orValue(''))"
              " + variables.vmVolumes.filter(v, has(v.containerDisk) && has(v.containerDisk.image))"
              ".map(v, v.containerDisk.image)",
    "trusted": f"object.?metadata.?annotations[?{literal(TRUST_ANNOTATION)}].orValue('') == 'trusted'",
}


def variables_used(expression: str) -> list[str]:
    """The variables `expression` needs, dependencies first (the order a policy declares them in)."""
    ordered: list[str] = []

    def visit(text: str) -> None:
        for name in re.findall(r"variables\.(\w+)", text):
            if name not in ordered:
                visit(VARIABLES[name])
                if name not in ordered:
                    ordered.append(name)

    visit(expression)
    return ordered
