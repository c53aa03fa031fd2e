"""`render`: a stack's Kubernetes objects as YAML (or JSON), on stdout or one file per object."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import yaml

from components.errors import ConfigError
from components.manifests.common import Manifest, identity
from components.readiness import format_seconds
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader

from .output import warn


class _Dumper(yaml.CSafeDumper):
    """Multi-line strings (the catalogue's runtimes.json) as readable `|` blocks."""

    # Rendered objects share unchanged upstream subtrees (CRD schemas); write each in full,
    # never as YAML anchors and aliases.
    def ignore_aliases(self, data: object) -> bool:
        return True


def _represent_str(dumper: yaml.CSafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def manifests_yaml(manifests: list[Manifest]) -> str:
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def _file_name(index: int, manifest: Manifest) -> str:
    kind, namespace, name = identity(manifest)
    return f"{index:03d}-{kind.lower()}-{namespace + '-' if namespace else ''}{name}.yaml"


def require_empty(out: Path | None) -> None:
    """Check --out before rendering: a new or empty, writable directory. Files that are
    already there are never deleted or overwritten (nothing tells us who wrote them)."""
    if out is None:
        return
    if out.is_symlink() and not out.exists():
        raise ConfigError(f"--out {out}: is a dangling symbolic link; remove it or give another directory")
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: is an existing file, not a directory; give a new or empty directory")
        try:
            if any(out.iterdir()):
                raise ConfigError(f"--out {out}: directory is not empty; give a new or empty directory")
        except OSError as error:
            raise ConfigError(f"--out {out}: cannot read the directory ({error.strerror or error})") from None
        writable = out
    else:
        writable = next((p for p in out.absolute().parents if p.exists()), Path("/"))
        if not writable.is_dir():
            raise ConfigError(f"--out {out}: cannot be created: {writable} is a file, not a directory")
    if not os.access(writable, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write into {writable} (permission denied)")


def write_files(manifests: list[Manifest], out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for index, manifest in enumerate(manifests):
            # "x": fail rather than overwrite a file that appeared since the check.
            with open(out / _file_name(index, manifest), "x", encoding="utf-8") as file:
                file.write(manifests_yaml([manifest]))
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise ConfigError(f"--out {out}: cannot write{where}: {error.strerror or error}") from None


def summary(stack: str, spec: StackSpec, manifests: list[Manifest], out: Path | None) -> str:
    kinds = Counter(m["kind"] for m in manifests)
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    where = f" into {out}" if out else ""
    installs = [f"agent-sandbox {spec.agent_sandbox.version}" + _unless_managed(spec.agent_sandbox.install)]
    if spec.kubevirt is not None:
        installs.append(f"KubeVirt {spec.kubevirt.version}" + _unless_managed(spec.kubevirt.install))
    line = f"rendered {len(manifests)} objects for stack {stack!r} ({', '.join(installs)}){where}: {counts}"
    return line + _waits(spec)


def _waits(spec: StackSpec) -> str:
    """The waits `pulumi up` adds to these objects (PoolReadiness; docs/runtimes.md#waiting-for-a-warm-pool)."""
    if not spec.cluster.wait_for_workloads:
        return ""
    pools = [f"{p.name} ({p.replicas} ready, at most {format_seconds(p.ready_timeout_seconds)})"
             for p in spec.all_warm_pools() if p.waits_for_ready]
    return f"\n`pulumi up` waits for warm pools: {', '.join(pools)}" if pools else ""


def _unless_managed(install: str) -> str:
    return {"managed": "", "external": " [external: not rendered, CRDs checked at deploy]", "none": " [none]"}[install]


def warn_upstream(loader: UpstreamLoader) -> None:
    for warning in loader.warnings:
        warn(warning)
