"""Command line: `python -m components render --stack dev` (no cluster, no Pulumi CLI)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import yaml

from .diff import diff_manifests, markdown, render_at_ref, text
from .errors import ConfigError
from .manifests.common import Manifest, identity
from .manifests.stack import render_stack
from .specs.layers import leaves
from .specs.loader import STACKS_DIR, key_path, load_layered, load_stack, spec_from_config
from .upstream import UpstreamLoader

EXIT_OK, EXIT_USAGE = 0, 2


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
    config = commands.add_parser("config", help="inspect a stack's effective config")
    config_commands = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    explain = config_commands.add_parser("explain", help="every effective value and the layer it came from")
    explain.add_argument("--stack", required=True)
    explain.add_argument("--format", choices=["table", "json"], default="table")
    return parser


def to_yaml(manifests: list[Manifest]) -> str:
    return yaml.dump_all(manifests, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False, width=120)


def _file_name(index: int, manifest: Manifest) -> str:
    kind, namespace, name = identity(manifest)
    return f"{index:03d}-{kind.lower()}-{namespace + '-' if namespace else ''}{name}.yaml"


def render(args: argparse.Namespace) -> int:
    if args.out and args.out.exists() and any(args.out.iterdir()):
        raise ConfigError(f"--out {args.out}: directory is not empty; give a new or empty directory")
    spec = load_stack(args.stack, args.stacks_dir)
    manifests = render_stack(spec, UpstreamLoader())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for index, manifest in enumerate(manifests):
            (args.out / _file_name(index, manifest)).write_text(to_yaml([manifest]))
    else:
        sys.stdout.write(to_yaml(manifests))
    kinds = Counter(m["kind"] for m in manifests)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    where = f" into {args.out}" if args.out else ""
    print(
        f"rendered {len(manifests)} objects for stack {args.stack!r} "
        f"(agent-sandbox {spec.agent_sandbox.version}){where}: {summary}",
        file=sys.stderr,
    )
    return EXIT_OK


def explain(args: argparse.Namespace) -> int:
    layered, source = load_layered(args.stack, args.stacks_dir)
    spec = spec_from_config(layered.config, source=source)
    rows = [
        (key_path(path), value, layered.source_of(path))
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


def diff(args: argparse.Namespace) -> int:
    head = render_stack(load_stack(args.stack, args.stacks_dir), UpstreamLoader())
    base = render_at_ref(args.base, args.stack, root=args.stacks_dir.resolve().parent)
    result = diff_manifests(args.stack, args.base, base, head)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2, default=str))
    else:
        sys.stdout.write(markdown(result) if args.format == "markdown" else text(result))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "config":
            return {"explain": explain}[args.config_command](args)
        return {"render": render, "diff": diff}[args.command](args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
