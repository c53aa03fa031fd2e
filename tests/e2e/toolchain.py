"""Where tools/build.sh put the toolchain, and why a piece is missing when it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Same default as tools/build.sh.
TOOLCHAIN_DIR = Path(os.environ.get("TOOLCHAIN_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                     / "sandbox-infra" / "toolchain")

COMPONENT_OF = {
    "etcd": "etcd",
    "kube-apiserver": "kube-apiserver",
    "kubelet": "kubelet",
    "kubectl": "kubectl",
    "agent-sandbox-controller": "agent-sandbox-controller",
    "pulumi": "pulumi",
    "pulumi-language-python": "pulumi",
    "pulumi-resource-pulumi-python": "pulumi",
    "pulumi-resource-kubernetes": "pulumi-resource-kubernetes",
    "pulumi-language-yaml": "pulumi-yaml",
    "runsc": "gvisor",
    "containerd-shim-runsc-v1": "gvisor",
}


def binary(name: str) -> Path:
    return TOOLCHAIN_DIR / "bin" / name


def missing_reason(*names: str) -> str | None:
    """None when every binary is there; otherwise one sentence saying which is missing and why
    (the build's recorded reason, e.g. the module proxy's refusal), for `pytest.skip`."""
    reasons, seen = [], set()
    for name in names:
        if binary(name).is_file() and os.access(binary(name), os.X_OK):
            continue
        component = COMPONENT_OF[name]
        if component in seen:
            continue
        seen.add(component)
        status_file = TOOLCHAIN_DIR / "status" / f"{component}.json"
        if status_file.is_file():
            status = json.loads(status_file.read_text())
            reasons.append(f"{name} {status['version']} is {status['state']}: {status['detail']}")
        else:
            reasons.append(f"{name} is not built (run tools/build.sh; looked in {TOOLCHAIN_DIR / 'bin'})")
    return "; ".join(reasons) or None
