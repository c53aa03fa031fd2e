"""`check`: run the policy rules offline over a rendered stack or any YAML manifests.

    python -m sandbox_infra check --stack prod
    python -m sandbox_infra check -f manifests.yaml [-f more.yaml] [--stack prod] --format sarif
    kubectl get deploy -A -o yaml | python -m sandbox_infra check -f -
    python -m sandbox_infra fleet check          # every stack of the fleet, in wave order

Exit status: 0 when no mandatory rule fails, 1 when one does, 2 for usage or config errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sandbox_policy import check
from sandbox_policy.engine import Report
from sandbox_policy.rule import Context

from components.errors import ConfigError
from components.inputs import MAX_BYTES, decode, read_text
from components.manifests.stack import render_stack
from components.specs.loader import PROJECT_ROOT, load_stack
from components.upstream import UpstreamLoader

from .report import FORMATS, render, summary
from .sources import Located, load_documents, stack_locations

EXIT_OK, EXIT_VIOLATIONS = 0, 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check", help="check a stack, or any YAML manifests, against the security policy rules",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", help="stack name: check its rendered objects under its policy settings; "
                                        "with -f, only apply its settings to the files")
    parser.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                        help="multi-document YAML to check ('-' reads stdin); repeatable")
    parser.add_argument("--format", choices=FORMATS, default="table", help="report format (default: table)")


def add_fleet_parser(fleet_commands: argparse._SubParsersAction) -> None:
    parser = fleet_commands.add_parser("check", help="check every stack of the fleet against the policy rules (offline)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="report format (default: table); sarif holds one run per stack")


def _uri(path: Path) -> str:
    """Repository-relative where possible: code scanning resolves it against the checkout."""
    resolved = path.resolve()
    return resolved.relative_to(PROJECT_ROOT).as_posix() if resolved.is_relative_to(PROJECT_ROOT) else path.as_posix()


def _stdin(label: str) -> str:
    stream = getattr(sys.stdin, "buffer", None)
    return decode(stream.read(MAX_BYTES + 1), label) if stream is not None else sys.stdin.read()


def _read_files(names: list[str]) -> list[Located]:
    located: list[Located] = []
    for name in names:
        if name == "-":
            found = load_documents(_stdin("-f - (stdin)"), None, "-f - (stdin)")
        else:
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"-f {name}: no such file; give a YAML file of Kubernetes objects, or '-' for stdin")
            found = load_documents(read_text(path, f"-f {name}"), _uri(path), f"-f {name}")
        if not found:
            # A gate that passes on nothing fails open: an empty file or stream is a broken pipeline.
            raise ConfigError(f"-f {name}: holds no Kubernetes objects; nothing to check "
                              "(an empty file or stream usually means the command producing it failed)")
        located += found
    return located


def check_stack(stack: str, stacks_dir: Path, loader: UpstreamLoader) -> tuple[Report, list[Located]]:
    """A stack's rendered objects under its own settings, each located at its config entry."""
    spec = load_stack(stack, stacks_dir)
    located = stack_locations(stack, stacks_dir, render_stack(spec, loader))
    return check([item.manifest for item in located], spec.policy_context(f"stack {stack}")), located


def run(args: argparse.Namespace) -> int:
    if not args.stack and not args.filename:
        raise ConfigError("check: give --stack NAME, or -f FILE (or both: the files under that stack's settings)")
    if args.filename:
        context = Context()
        if args.stack:
            context = load_stack(args.stack, args.stacks_dir).policy_context(f"stack {args.stack}")
        located = _read_files(args.filename)
        target = ", ".join("stdin" if n == "-" else n for n in args.filename)
        report = check([item.manifest for item in located], context)
    else:
        report, located = check_stack(args.stack, args.stacks_dir, UpstreamLoader())
        target = f"stack {args.stack}"
    sys.stdout.write(render(report, target, located, args.format))
    if args.format != "table":
        print(summary(report), file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_VIOLATIONS


def run_fleet(stacks: list[str], args: argparse.Namespace) -> int:
    """`fleet check`: every stack, one report each (SARIF: one document, one run per stack)."""
    loader = UpstreamLoader()
    results = [(f"stack {stack}", *check_stack(stack, args.stacks_dir, loader)) for stack in stacks]
    outputs = [render(report, target, located, args.format) for target, report, located in results]
    if args.format == "sarif":
        document = json.loads(outputs[0])
        document["runs"] = [json.loads(output)["runs"][0] for output in outputs]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif args.format == "json":
        sys.stdout.write(json.dumps([json.loads(output) for output in outputs], indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(outputs))
    for target, report, _ in results:
        print(f"{target}: {summary(report)}", file=sys.stderr)
    return EXIT_OK if all(report.passed for _, report, _ in results) else EXIT_VIOLATIONS
