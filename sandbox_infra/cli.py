"""Command line: `python -m sandbox_infra render --stack dev` (no cluster, no Pulumi CLI),
`python -m sandbox_infra size --rate 30/min --ready 8s --target 0.99`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from sandbox_policy.errors import PolicyInputError

from components.errors import ConfigError
from components.manifests.common import Manifest, identity
from components.manifests.stack import render_stack
from components.specs.layers import leaves
from components.specs.loader import STACKS_DIR, key_path, load_layered, load_stack, spec_from_config
from components.specs.stack import StackSpec
from components.specs.warm_pool import WarmPoolSpec
from components.upstream import UpstreamLoader

from . import check as check_command
from .diff import StackDiff, diff_stack, markdown, text
from .fleet import AutomationOperations, FleetSpec, PulumiCliMissing, load_fleet, run_fleet, summary_table
from .size import add_size_parser, size

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sandbox-infra", description=__doc__)
    parser.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help="directory of Pulumi.<stack>.yaml files")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    render = commands.add_parser("render", help="print a stack's Kubernetes objects as YAML")
    render.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    render.add_argument("--out", type=Path, help="write one file per object into this (empty) directory")
    diff = commands.add_parser("diff", help="what changes between a git ref and the working tree")
    diff.add_argument("--stack", required=True)
    diff.add_argument("--base", required=True, metavar="GIT_REF", help="e.g. origin/main")
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    fleet = commands.add_parser("fleet", help="operate on every stack of the fleet file, wave by wave")
    fleet.add_argument("--fleet", type=Path, help="fleet file (default: stacks/fleet.yaml)")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True, parser_class=_Parser)
    fleet_render = fleet_commands.add_parser("render", help="render every stack (offline)")
    fleet_render.add_argument("--out", type=Path, help="write <stack>/<object>.yaml files into this (empty) directory")
    fleet_diff = fleet_commands.add_parser("diff", help="diff every stack against a git ref (offline)")
    fleet_diff.add_argument("--base", required=True, metavar="GIT_REF")
    fleet_diff.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    fleet_affected = fleet_commands.add_parser("affected", help="stacks whose rendered objects differ from a git ref")
    fleet_affected.add_argument("--base", required=True, metavar="GIT_REF")
    check_command.add_fleet_parser(fleet_commands)
    fleet_commands.add_parser("preview", help="pulumi preview, wave by wave (needs the Pulumi CLI)")
    fleet_up = fleet_commands.add_parser("up", help="pulumi up, wave by wave (needs the Pulumi CLI); asks first")
    fleet_up.add_argument("--yes", "-y", action="store_true",
                          help="roll out without asking (needed where there is no terminal to ask, e.g. CI)")
    fleet_commands.add_parser("status", help="what each stack runs and when it was last updated")
    config = commands.add_parser("config", help="inspect a stack's effective config")
    config_commands = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    explain = config_commands.add_parser("explain", help="every effective value and the layer it came from")
    explain.add_argument("--stack", required=True)
    explain.add_argument("--format", choices=["table", "json"], default="table")
    check_command.add_parser(commands)
    add_size_parser(commands)
    return parser


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


def to_yaml(manifests: list[Manifest]) -> str:
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def _file_name(index: int, manifest: Manifest) -> str:
    kind, namespace, name = identity(manifest)
    return f"{index:03d}-{kind.lower()}-{namespace + '-' if namespace else ''}{name}.yaml"


def _require_empty(out: Path | None) -> None:
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


def _write(manifests: list[Manifest], out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for index, manifest in enumerate(manifests):
            # "x": fail rather than overwrite a file that appeared since the check.
            with open(out / _file_name(index, manifest), "x", encoding="utf-8") as file:
                file.write(to_yaml([manifest]))
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise ConfigError(f"--out {out}: cannot write{where}: {error.strerror or error}") from None


def _summary(stack: str, spec: StackSpec, manifests: list[Manifest], out: Path | None) -> str:
    kinds = Counter(m["kind"] for m in manifests)
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    where = f" into {out}" if out else ""
    installs = [f"agent-sandbox {spec.agent_sandbox.version}" + _unless_managed(spec.agent_sandbox.install)]
    if spec.kubevirt is not None:
        installs.append(f"KubeVirt {spec.kubevirt.version}" + _unless_managed(spec.kubevirt.install))
    return f"rendered {len(manifests)} objects for stack {stack!r} ({', '.join(installs)}){where}: {counts}"


def _unless_managed(install: str) -> str:
    return {"managed": "", "external": " [external: not rendered, CRDs checked at deploy]", "none": " [none]"}[install]


def _warn(loader: UpstreamLoader) -> None:
    for warning in loader.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def render(args: argparse.Namespace) -> int:
    _require_empty(args.out)
    spec = load_stack(args.stack, args.stacks_dir)
    loader = UpstreamLoader()
    manifests = render_stack(spec, loader)
    if args.out:
        _write(manifests, args.out)
    else:
        sys.stdout.write(to_yaml(manifests))
    print(_summary(args.stack, spec, manifests, args.out), file=sys.stderr)
    _warn(loader)
    return EXIT_OK


def _print_diff(result: StackDiff, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result.as_json(), indent=2, default=str))
    else:
        sys.stdout.write(markdown(result) if fmt == "markdown" else text(result))


def diff(args: argparse.Namespace) -> int:
    _print_diff(diff_stack(args.stack, args.base, args.stacks_dir, UpstreamLoader()), args.format)
    return EXIT_OK


def fleet(args: argparse.Namespace) -> int:
    plan = load_fleet(args.fleet, args.stacks_dir)
    loader = UpstreamLoader()
    if args.fleet_command == "render":
        _require_empty(args.out)
        for stack in plan.stacks:
            spec = load_stack(stack, args.stacks_dir)
            manifests = render_stack(spec, loader)
            if args.out:
                _write(manifests, args.out / stack)
            else:
                sys.stdout.write(f"# stack: {stack}\n---\n" + to_yaml(manifests))
            print(_summary(stack, spec, manifests, args.out and args.out / stack), file=sys.stderr)
        _warn(loader)
        return EXIT_OK
    if args.fleet_command in ("diff", "affected"):
        results = [diff_stack(stack, args.base, args.stacks_dir, loader) for stack in plan.stacks]
        if args.fleet_command == "affected":
            print(" ".join(r.stack for r in results if not r.empty or r.policy_introduced or r.policy_fixed))
        elif args.format == "json":
            print(json.dumps([r.as_json() for r in results], indent=2, default=str))
        else:
            sys.stdout.write("\n".join(markdown(r) if args.format == "markdown" else text(r) for r in results))
        return EXIT_OK
    if args.fleet_command == "check":
        return check_command.run_fleet(plan.stacks, args)
    if args.fleet_command == "status":
        return fleet_status(plan, args.stacks_dir)
    operations = AutomationOperations(args.stacks_dir.resolve().parent)
    if args.fleet_command == "up" and not args.yes and not _confirm_rollout(plan):
        return EXIT_USAGE
    outcomes = run_fleet(plan, args.fleet_command, operations, _progress)
    sys.stdout.write(summary_table(outcomes))
    return EXIT_OK if all(o.result == "succeeded" for o in outcomes) else EXIT_FAILED


def _confirm_rollout(plan: FleetSpec) -> bool:
    """A rollout changes every cluster of the fleet: never without a yes."""
    waves = "\n".join(f"  {i}. {w.name}: {', '.join(w.stacks)}" for i, w in enumerate(plan.waves, 1))
    print(f"fleet up will update {len(plan.stacks)} stack(s) in {len(plan.waves)} wave(s):\n{waves}", file=sys.stderr)
    if not sys.stdin.isatty():
        print("error: fleet up needs a confirmation and there is no terminal to ask: pass --yes", file=sys.stderr)
        return False
    answer = input("Roll out? Type 'yes' to continue: ")
    if answer.strip().lower() != "yes":
        print("error: not confirmed; nothing was changed", file=sys.stderr)
        return False
    return True


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _pool_size(pool: WarmPoolSpec) -> str:
    """`python=15`, or for an autoscaled SLO pool its initial size and bounds: `python=15 (hpa 5-35)`."""
    slo = pool.slo
    if slo is None or slo.autoscaling is None or slo.autoscaling_plan is None:
        return f"{pool.name}={pool.replicas}"
    plan = slo.autoscaling_plan
    return f"{pool.name}={pool.replicas} ({slo.autoscaling.engine} {plan.min_replicas}-{plan.max_replicas})"


def fleet_status(plan: FleetSpec, stacks_dir: Path) -> int:
    try:
        operations: AutomationOperations | None = AutomationOperations(stacks_dir.resolve().parent)
    except PulumiCliMissing:
        operations = None
    rows = [("stack", "wave", "environment", "agent-sandbox", "warm pools (replicas)", "last update")]
    for wave in plan.waves:
        for stack in wave.stacks:
            spec = load_stack(stack, stacks_dir)
            pools = ", ".join(_pool_size(p) for p in spec.warm_pools) or "-"
            last = operations.last_update(stack) if operations else "unknown"
            rows.append((stack, wave.name, spec.cluster.environment, spec.agent_sandbox.version, pools, last))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if operations is None:
        print("error: last update unknown: no Pulumi CLI on PATH (the columns before it come from stack config)",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def explain(args: argparse.Namespace) -> int:
    layered, source = load_layered(args.stack, args.stacks_dir)
    spec = spec_from_config(layered.config, source=source)
    rows = [
        # A secret's layer recorded its `{secure: ...}` leaf; the spec shows the (redacted) value.
        (key_path(path), value, layered.source_of(path if path in layered.origin else (*path, "secure")))
        for path, value in leaves(spec.model_dump(mode="json", by_alias=True))
    ]
    if args.format == "json":
        print(json.dumps([{"key": k, "value": v, "layer": layer} for k, v, layer in rows], indent=2))
        return EXIT_OK
    shown = [(k, json.dumps(v), layer) for k, v, layer in rows]
    width = max(len(k) + len(v) for k, v, _ in shown) + 3
    for key, value, layer in shown:
        print(f"{key} = {value}".ljust(width) + f"  # {layer}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "fleet":
            return fleet(args)
        if args.command == "config":
            return {"explain": explain}[args.config_command](args)
        return {"render": render, "diff": diff, "check": check_command.run, "size": size}[args.command](args)
    except PolicyInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
