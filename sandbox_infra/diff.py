"""Offline diff of a stack between a git ref and the working tree.

The base is rendered by the base's own code (`git archive` of the ref into a
temporary directory, then its own `render` command), so a change to a
builder shows up exactly like a change to config. Objects are matched by API
group, kind, namespace and name (not API version: an agent-sandbox upgrade from
v1alpha1 to v1beta1 is a change, not a delete and a create). Secret values are
compared but never printed.
"""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sandbox_policy import Context, check

from components.errors import ConfigError
from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import load_stack
from components.specs.secrets import REDACTED
from components.upstream import PROJECT_ROOT, UpstreamLoader, upstream_dir

Key = tuple[str, str, str, str]  # (api group, kind, namespace, name)

# Fields the API server will not update in place: pulumi-kubernetes replaces the object.
IMMUTABLE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": (("spec", "selector"),),
    "StatefulSet": (("spec", "selector"), ("spec", "volumeClaimTemplates")),
    "Service": (("spec", "clusterIP"),),
    "RoleBinding": (("roleRef",),),
    "ClusterRoleBinding": (("roleRef",),),
    "PersistentVolumeClaim": (("spec",),),
    "SandboxTemplate": (("spec", "volumeClaimTemplates"),),
    "VirtualMachine": (("spec", "dataVolumeTemplates"),),
    "VirtualMachinePool": (("spec", "virtualMachineTemplate", "spec", "dataVolumeTemplates"),),
}

# Deleting one of these deletes data or live sessions, not just configuration.
DATA_KINDS = {
    "CustomResourceDefinition": "every object of this kind in the cluster",
    "Namespace": "everything in the namespace",
    "SandboxWarmPool": "its warm sandboxes",
    "SandboxTemplate": "the sandboxes created from it",
    "VirtualMachine": "the VM and its disks",
    "VirtualMachinePool": "the pool's VMs and their disks",
    "DataVolume": "the disk's data",
    "PersistentVolumeClaim": "the volume's data",
    "KubeVirt": "every VM (unless uninstall is blocked by workloads)",
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass
class ObjectChange:
    key: Key
    changes: list[FieldChange]
    replaced: bool = False


@dataclass
class StackDiff:
    stack: str
    base_ref: str
    added: list[Key] = field(default_factory=list)
    removed: list[Key] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    policy_introduced: list[str] = field(default_factory=list)
    policy_fixed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "base": self.base_ref,
            "added": [describe(k) for k in self.added],
            "removed": [describe(k) for k in self.removed],
            "changed": [
                {"object": describe(c.key), "replaced": c.replaced,
                 "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in c.changes]}
                for c in self.changed
            ],
            "warnings": self.warnings,
            "policy": {"introduced": self.policy_introduced, "fixed": self.policy_fixed},
        }


def describe(key: Key) -> str:
    _, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def object_key(manifest: Manifest) -> Key:
    group = manifest["apiVersion"].rpartition("/")[0]
    meta = manifest["metadata"]
    return group, manifest["kind"], meta.get("namespace", ""), meta["name"]


def _redacted(key: Key, change: FieldChange) -> FieldChange:
    """Secret values are compared, never shown: a rotated value shows as a changed key."""
    if key[1] != "Secret" or not change.path.startswith(("data", "stringData")):
        return change
    return FieldChange(change.path, None if change.before is None else REDACTED,
                       None if change.after is None else REDACTED)


def field_changes(before: Any, after: Any, path: tuple[str, ...] = ()) -> list[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after), key=str)
            for change in field_changes(before.get(key), after.get(key), (*path, str(key)))
        ]
    if before != after:
        return [FieldChange(".".join(path), before, after)]
    return []


def diff_manifests(stack: str, base_ref: str, base: list[Manifest], head: list[Manifest]) -> StackDiff:
    before = {object_key(m): m for m in base}
    after = {object_key(m): m for m in head}
    result = StackDiff(stack, base_ref)
    result.added = sorted(set(after) - set(before))
    result.removed = sorted(set(before) - set(after))
    for key in sorted(set(before) & set(after)):
        changes = [_redacted(key, c) for c in field_changes(before[key], after[key])]
        if changes:
            immutable = IMMUTABLE_FIELDS.get(key[1], ())
            replaced = any(c.path == ".".join(f) or c.path.startswith(".".join(f) + ".") for f in immutable for c in changes)
            result.changed.append(ObjectChange(key, changes, replaced))
    result.warnings = _warnings(result, before, after)
    return result


def _warnings(result: StackDiff, before: dict[Key, Manifest], after: dict[Key, Manifest]) -> list[str]:
    warnings = []
    for key in result.removed:
        if key[1] in DATA_KINDS:
            warnings.append(f"{describe(key)} is removed: deleting it deletes {DATA_KINDS[key[1]]}")
    renamed_pools = _renamed(result, before, after, "SandboxWarmPool", ("spec", "sandboxTemplateRef", "name"))
    for old, new in renamed_pools:
        warnings.append(f"{describe(old)} looks renamed to {new[3]}: the old pool and its warm sandboxes are "
                        "deleted and a new pool starts cold")
    for change in result.changed:
        if change.replaced:
            fields = ", ".join(c.path for c in change.changes)
            warnings.append(f"{describe(change.key)} is replaced (delete, then create): immutable field changed ({fields})")
        if change.key[1] == "CustomResourceDefinition":
            dropped = _served(before[change.key]) - _served(after[change.key])
            if dropped:
                warnings.append(f"{describe(change.key)} stops serving {', '.join(sorted(dropped))}: objects stored at "
                                "those versions become unreadable")
    return warnings


def _renamed(result: StackDiff, before: dict, after: dict, kind: str, ref: tuple[str, ...]) -> list[tuple[Key, Key]]:
    def target(manifest: Manifest) -> Any:
        value: Any = manifest
        for part in ref:
            value = value.get(part, {}) if isinstance(value, dict) else None
        return value

    added = [k for k in result.added if k[1] == kind]
    pairs = []
    for old in (k for k in result.removed if k[1] == kind):
        match = next((new for new in added if new[2] == old[2] and target(after[new]) == target(before[old])), None)
        if match is not None:
            pairs.append((old, match))
            added.remove(match)
    return pairs


def _served(crd: Manifest) -> set[str]:
    return {v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("served")}


# --- policy delta -----------------------------------------------------------------------


def policy_delta(base: list[Manifest], head: list[Manifest], context: Context) -> tuple[list[str], list[str]]:
    """Violations the change introduces and fixes. Both sides are judged under the
    stack's current settings, so the delta is what the change to objects did."""

    def violations(manifests: list[Manifest]) -> set[str]:
        return {f"{f.rule.name} ({f.enforcement}): {f.object_ref}: {f.message}"
                for f in check(manifests, context).findings if f.exception is None}

    before, after = violations(base), violations(head)
    return sorted(after - before), sorted(before - after)


def diff_stack(stack: str, base_ref: str, stacks_dir: Path, loader: UpstreamLoader) -> StackDiff:
    """The working tree's `stack` against `base_ref`: objects, warnings and policy delta."""
    spec = load_stack(stack, stacks_dir)
    head = render_stack(spec, loader)
    base = render_at_ref(base_ref, stack, root=stacks_dir.resolve().parent)
    result = diff_manifests(stack, base_ref, base, head)
    result.policy_introduced, result.policy_fixed = policy_delta(base, head, spec.policy_context(f"stack {stack}"))
    return result


# --- rendering a stack at a git ref -------------------------------------------------


def render_at_ref(ref: str, stack: str, root: Path = PROJECT_ROOT) -> list[Manifest]:
    """Render `stack` with the code and config of `ref`. A stack that does not exist
    at the ref renders as nothing (everything is added)."""
    if ref.startswith("-"):  # git would read it as an option
        raise ConfigError(f"--base {ref}: a git ref cannot start with '-'")
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=False)
    if commit.returncode != 0:
        raise ConfigError(f"--base {ref}: not a git ref of {root} (fatal: not a valid object name: {ref})")
    key = (commit.stdout.strip(), stack, upstream_dir().resolve())
    if key not in _renders:
        _renders[key] = _render_in_tree(_checkout(root, key[0]), ref, stack)
    return copy.deepcopy(_renders[key])  # callers may edit what they get; the next one must not see it


# A commit's tree renders the same every time (its id names its content, in any clone):
# once per process, as `fleet diff` and `fleet affected` ask for the same base again.
# Keyed by commit id, never by ref name, so a moved ref is never served stale.
_renders: dict[tuple[str, str, Path], list[Manifest]] = {}


def _render_in_tree(tree: Path, ref: str, stack: str) -> list[Manifest]:
    if not (tree / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        return []
    # The ref's own packages come first on the path; the command-line tools moved from
    # `components` to `sandbox_infra` and the rules to policies/, so older refs render too.
    env = {**os.environ, "UPSTREAM_DIR": str(upstream_dir().resolve()),
           "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "policies")])}
    command = "sandbox_infra" if (tree / "sandbox_infra").is_dir() else "components"
    rendered = subprocess.run([sys.executable, "-m", command, "render", "--stack", stack],
                              cwd=tree, env=env, capture_output=True, text=True, check=False)
    if rendered.returncode != 0:
        raise ConfigError(f"--base {ref}: rendering stack {stack!r} at that ref failed: {rendered.stderr.strip()}")
    return [doc for doc in yaml.load_all(rendered.stdout, Loader=yaml.CSafeLoader) if doc]


_checkouts: dict[tuple[Path, str], tempfile.TemporaryDirectory] = {}


def _checkout(root: Path, commit: str) -> Path:
    """The tree of `commit`, extracted once per process (fleet diff renders many stacks
    of one base); keyed by commit id, so a moved ref is never served stale."""
    key = (root.resolve(), commit)
    if key not in _checkouts:
        archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", commit],
                                 capture_output=True, check=True)
        directory = tempfile.TemporaryDirectory(prefix="sandbox-infra-base-")  # removed at exit
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(directory.name, filter="data")
        _checkouts[key] = directory
    return Path(_checkouts[key].name)


# --- reports ----------------------------------------------------------------------------


def _value(value: Any) -> str:
    text = "(unset)" if value is None else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").strip()
    return text if len(text) <= 80 else text[:77] + "..."


def markdown(diff: StackDiff) -> str:
    lines = [f"<!-- sandbox-infra-diff:{diff.stack} -->", f"### Stack `{diff.stack}` vs `{diff.base_ref}`", ""]
    if diff.empty and not diff.policy_introduced and not diff.policy_fixed:
        return "\n".join([*lines, "No changes."]) + "\n"
    lines.append(f"**{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed**")
    lines.append("")
    if diff.warnings:
        lines += ["#### :warning: Needs attention", *[f"- {w}" for w in diff.warnings], ""]
    if diff.policy_introduced or diff.policy_fixed:
        lines += ["#### Policy", *[f"- :x: introduced: {v}" for v in diff.policy_introduced],
                  *[f"- :white_check_mark: fixed: {v}" for v in diff.policy_fixed], ""]
    for title, keys in (("Added", diff.added), ("Removed", diff.removed)):
        if keys:
            lines += [f"#### {title}", *[f"- `{describe(k)}`" for k in keys], ""]
    if diff.changed:
        lines += ["#### Changed", "", "| object | field | before | after |", "| --- | --- | --- | --- |"]
        for change in diff.changed:
            label = describe(change.key) + (" (replaced)" if change.replaced else "")
            for f in change.changes:
                lines.append(f"| `{label}` | `{f.path}` | `{_value(f.before)}` | `{_value(f.after)}` |")
        lines.append("")
    return "\n".join(lines)


def text(diff: StackDiff) -> str:
    lines = [f"stack {diff.stack} vs {diff.base_ref}: {len(diff.added)} added, {len(diff.changed)} changed, "
             f"{len(diff.removed)} removed"]
    lines += [f"  + {describe(k)}" for k in diff.added]
    lines += [f"  - {describe(k)}" for k in diff.removed]
    for change in diff.changed:
        lines.append(f"  ~ {describe(change.key)}" + (" (replaced)" if change.replaced else ""))
        lines += [f"      {f.path}: {_value(f.before)} -> {_value(f.after)}" for f in change.changes]
    lines += [f"  ! {w}" for w in diff.warnings]
    lines += [f"  policy introduced: {v}" for v in diff.policy_introduced]
    lines += [f"  policy fixed: {v}" for v in diff.policy_fixed]
    return "\n".join(lines) + "\n"
