"""`check`: run the policy rules offline over a rendered stack or any YAML manifests.

    sandbox-infra check -s prod
    sandbox-infra check -f manifests.yaml [-f more.yaml] [-s prod] -o sarif --output-file check.sarif
    kubectl get deploy -A -o yaml | sandbox-infra check -f -
    sandbox-infra fleet check          # every stack of the fleet, in wave order

Every object is first validated against its schema (components/validation.py): one an API
server would refuse is bad input, not something to judge.

Exit status: 0 when no mandatory rule fails, 1 when one does, 2 for usage or config errors
and for objects that fail their schema.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandbox_policy import check
from sandbox_policy.engine import Report
from sandbox_policy.rule import Context

from components.errors import ConfigError
from components.inputs import MAX_BYTES, decode, read_text
from components.manifests.stack import render_stack
from components.pins import DEFAULT_AGENT_SANDBOX_VERSION
from components.specs.loader import load_stack
from components.specs.stack_files import PROJECT_ROOT
from components.upstream import UpstreamLoader
from components.validation import SchemaValidator

from .output import Output, note, progress
from .report import Checked, render_many, summary
from .sources import Located, load_documents, stack_locations

EXIT_OK, EXIT_VIOLATIONS = 0, 1


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


MAX_SCHEMA_PROBLEMS = 50  # listed in one error; more only bury the first ones


def validate(located: list[Located], validator: SchemaValidator, target: str) -> None:
    """Fail closed before any rule runs: an object an API server would refuse (unknown field,
    wrong type, no containers, a malformed quantity, a kind with no schema) is bad input."""
    problems = []
    for item in located:
        meta = item.manifest.get("metadata") if isinstance(item.manifest.get("metadata"), dict) else {}
        name = f"{meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name') or ''}"
        where = f"{item.uri or 'stdin'}:{item.line} ({item.manifest['kind']} {name})"
        problems += [f"{where}: {problem}" for problem in validator.problems(item.manifest)]
    if problems:
        shown = problems[:MAX_SCHEMA_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise ConfigError(f"{target}: {len(problems)} schema problem(s): an API server would refuse these objects\n"
                          + "\n".join(f"  - {p}" for p in shown) + more)


def check_stack(stack: str, stacks_dir: Path, loader: UpstreamLoader,
                ignore_missing_schemas: bool = False) -> tuple[Report, list[Located]]:
    """A stack's rendered objects under its own settings, each located at its config entry."""
    spec = load_stack(stack, stacks_dir)
    located = stack_locations(stack, stacks_dir, render_stack(spec, loader))
    validate(located, SchemaValidator(loader, spec.agent_sandbox.version, ignore_missing_schemas), f"stack {stack}")
    return check([item.manifest for item in located], spec.policy_context(f"stack {stack}")), located


def run(stack: str | None, filenames: list[str], stacks_dir: Path, out: Output,
        ignore_missing_schemas: bool = False) -> int:
    """`check`: files (under a stack's settings when one is named), or a stack's rendered objects."""
    if not stack and not filenames:
        raise ConfigError("check: give -s/--stack NAME, or -f FILE (or both: the files under that stack's settings)")
    loader = UpstreamLoader()
    if filenames:
        spec = load_stack(stack, stacks_dir) if stack else None
        context = spec.policy_context(f"stack {stack}") if spec else Context()
        located = _read_files(filenames)
        target = ", ".join("stdin" if n == "-" else n for n in filenames)
        # Custom resources of agent-sandbox against the stack's release, else the default one.
        release = spec.agent_sandbox.version if spec else DEFAULT_AGENT_SANDBOX_VERSION
        validate(located, SchemaValidator(loader, release, ignore_missing_schemas), target)
        report = check([item.manifest for item in located], context)
    else:
        report, located = check_stack(stack, stacks_dir, loader, ignore_missing_schemas)
        target = f"stack {stack}"
    out.emit(lambda fmt: render_many([(report, target, located)], fmt, single=True))
    if out.formats != ["table"]:
        note(summary(report))
    return EXIT_OK if report.passed else EXIT_VIOLATIONS


def run_fleet(stacks: list[str], stacks_dir: Path, out: Output) -> int:
    """`fleet check`: every stack, one report each, combined into one document per format."""
    loader = UpstreamLoader()
    results: list[Checked] = []
    with progress("checking stacks", len(stacks)) as bar:
        for stack in stacks:
            bar.describe(f"checking {stack}")
            report, located = check_stack(stack, stacks_dir, loader)
            results.append((report, f"stack {stack}", located))
            bar.advance()
    out.emit(lambda fmt: render_many(results, fmt))
    for report, target, _ in results:
        note(f"{target}: {summary(report)}")
    return EXIT_OK if all(report.passed for report, _, _ in results) else EXIT_VIOLATIONS
