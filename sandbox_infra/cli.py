"""The `sandbox-infra` command line.

Every subcommand is declared one way (`@<group>.command()` on the groups below, which
add the global options to each command, so they are accepted anywhere on the line) and
prints through one output layer (`output.py`: `-o/--output`, `--output-file`, colour,
progress). `main(argv)` returns the exit status: 0 success, 1 a failed check or rollout,
2 bad input (one `error:` line naming the flag, file or key and what is allowed).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem, get_completion_class
from sandbox_policy.errors import PolicyInputError

from components.specs.stack_files import STACKS_DIR, available_stacks

from . import output
from .output import FORMAT_ALIASES, SETTINGS, Output, document, note, progress, table
from .report import FORMATS as CHECK_FORMATS
from .stacks import did_you_mean, resolve_stack

if TYPE_CHECKING:
    from . import fleet as fleet_module

# Each command imports what it runs (config models, renderers, rules, the Pulumi SDKs) when
# it runs: `--version`, `--help` and the completion the shell asks for on every Tab load
# none of it (tests/test_cli.py checks which modules each command may import).

PROG = "sandbox-infra"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE, EXIT_INTERRUPTED = 141, 130  # what a shell reports for SIGPIPE and Ctrl-C


# --- options accepted anywhere ------------------------------------------------------------


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Global options may appear on every level; only a value actually given counts (a later
    level's default must not undo `--stacks-dir X` given before the subcommand)."""
    if value not in (None, False):
        setattr(SETTINGS, param.name or "", value)


def _global_options() -> list[click.Option]:
    return [
        click.Option(["--stacks-dir"], type=click.Path(path_type=Path, file_okay=False), expose_value=False,
                     callback=_remember, is_eager=True, help="Directory of Pulumi.<stack>.yaml files [default: the project's stacks/]"),
        click.Option(["--no-color"], is_flag=True, default=False, expose_value=False, callback=_remember, is_eager=True,
                     help="No colour (also: the NO_COLOR environment variable)."),
    ]


def _fleet_options() -> list[click.Option]:
    return [click.Option(["--fleet", "fleet_file"], type=click.Path(path_type=Path, dir_okay=False), expose_value=False,
                         callback=_remember, is_eager=True, help="Fleet file [default: <stacks-dir>/fleet.yaml]")]


class PipeClosed(Exception):
    """The reader of stdout went away (`| head`). Not an OSError, so that Click lets it
    through to `main`, which ends quietly with the shell's SIGPIPE status."""


class WithGlobalOptions:
    """Adds the options accepted anywhere (and a family's own, e.g. `--fleet`) to a command."""

    params: list[click.Parameter]
    extra_options: Callable[[], list[click.Option]] = staticmethod(lambda: [])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += [*self.extra_options(), *_global_options()]


class Command(WithGlobalOptions, click.Command):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise PipeClosed() from None


class Group(WithGlobalOptions, click.Group):
    """A group whose commands (and subgroups) all carry the global options, and which
    answers a mistyped subcommand with the closest one."""

    command_class = Command
    group_class = type  # subgroups are of the parent's class

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            commands = self.list_commands(ctx)
            raise click.UsageError(f"unknown command {name!r} for '{ctx.command_path}'{did_you_mean(name, commands)}; "
                                   f"allowed: {', '.join(commands)}", ctx)
        return super().resolve_command(ctx, args)


class FleetCommand(Command):
    extra_options = staticmethod(_fleet_options)


class FleetGroup(Group):
    command_class = FleetCommand
    extra_options = staticmethod(_fleet_options)


def stacks_dir() -> Path:
    return SETTINGS.stacks_dir or STACKS_DIR


def _complete_stacks(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    directory = stacks_dir()
    return [CompletionItem(s) for s in available_stacks(directory) if s.startswith(incomplete)] if directory.is_dir() else []


def _complete_waves(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from .fleet import load_fleet

    try:
        plan = load_fleet(SETTINGS.fleet_file, stacks_dir())
    except PolicyInputError:
        return []
    return [CompletionItem(w.name) for w in plan.waves if w.name.startswith(incomplete)]


STACK_HELP = "Stack name (stacks/Pulumi.<stack>.yaml) [default: $PULUMI_STACK, else the stack `pulumi stack select` chose]"


def stack_option(help_text: str = STACK_HELP) -> Callable:
    return click.option("-s", "--stack", metavar="NAME", shell_complete=_complete_stacks, help=help_text)


class FormatChoice(click.Choice):
    """The formats that apply to a command, plus the older names (`text` for `table`)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(FORMAT_ALIASES.get(value, value), param, ctx)


def output_options(*formats: str, default: str = "table") -> Callable:
    """`-o/--output` (old name `--format`) and `--output-file`; the command receives `out: Output`."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, output_formats: tuple[str, ...], output_files: tuple[Path, ...], **kwargs: Any) -> Any:
            return function(*args, out=Output(list(output_formats) or [default], list(output_files)), **kwargs)

        wrapper = click.option("--output-file", "output_files", multiple=True, metavar="FILE",
                               type=click.Path(path_type=Path, dir_okay=False),
                               help="Write the output here instead of stdout; repeat with -o for several formats in one run.")(wrapper)
        return click.option("-o", "--output", "--format", "output_formats", multiple=True, type=FormatChoice(formats),
                            help=f"Output format [default: {default}].")(wrapper)

    return decorate


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .versions import version_text

        sys.stdout.write(version_text())
        ctx.exit(0)


@click.group(cls=Group, name=PROG, context_settings={"help_option_names": ["-h", "--help"]},
             help="Render, check, diff and roll out the agent-sandbox stacks. render, check, diff, config and size "
                  "work offline: no cluster, no Pulumi CLI.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the version and the agent-sandbox, KubeVirt, Pulumi SDK and provider versions it pins.")
def app() -> None:
    pass


# --- one stack ----------------------------------------------------------------------------


@app.command(help="Print a stack's Kubernetes objects (YAML; `-o json` gives one List).")
@stack_option()
@click.option("--out", "directory", type=click.Path(path_type=Path),
              help="Write one file per object into this (new or empty) directory.")
@output_options("yaml", "json", default="yaml")
def render(stack: str | None, directory: Path | None, out: Output) -> int:
    from components.manifests.stack import render_stack
    from components.specs.loader import load_stack
    from components.upstream import UpstreamLoader

    from .render import manifests_yaml, require_empty, summary, warn_upstream, write_files

    name = resolve_stack(stack, stacks_dir())
    require_empty(directory)
    spec = load_stack(name, stacks_dir())
    loader = UpstreamLoader()
    manifests = render_stack(spec, loader)
    if directory:
        write_files(manifests, directory)
    else:
        out.emit(lambda fmt: document({"apiVersion": "v1", "kind": "List", "items": manifests}, fmt) if fmt == "json"
                 else manifests_yaml(manifests))
    note(summary(name, spec, manifests, directory))
    warn_upstream(loader)
    return EXIT_OK


@app.command(help="Check a stack, or any YAML manifests, against the security policy rules. "
                  "Exit 1 on a mandatory violation, 2 on bad input.")
@stack_option("Stack: check its rendered objects under its policy settings; with -f, only apply its settings to the files "
              "[default without -f: $PULUMI_STACK, else the selected stack]")
@click.option("-f", "--filename", multiple=True, metavar="FILE",
              help="Multi-document YAML to check ('-' reads stdin); repeatable.")
@click.option("--ignore-missing-schemas", is_flag=True,
              help="Skip objects whose kind has no schema (neither Kubernetes' nor a pinned CRD's) instead of "
                   "failing on them, as kubeconform's flag of the same name.")
@output_options(*CHECK_FORMATS)
def check(stack: str | None, filename: tuple[str, ...], ignore_missing_schemas: bool, out: Output) -> int:
    if stack or not filename:
        stack = resolve_stack(stack, stacks_dir(), alternative=", or give -f FILE")
    from . import check as check_command

    return check_command.run(stack, list(filename), stacks_dir(), out, ignore_missing_schemas)


@app.command(help="What changes between a git ref and the working tree: objects, replacements, data loss, policy.")
@stack_option()
@click.option("--base", required=True, metavar="GIT_REF", help="The ref to compare with, e.g. origin/main.")
@output_options("table", "json", "yaml", "markdown")
def diff(stack: str | None, base: str, out: Output) -> int:
    from components.upstream import UpstreamLoader

    from .diff import diff_stack

    result = diff_stack(resolve_stack(stack, stacks_dir()), base, stacks_dir(), UpstreamLoader())
    out.emit(lambda fmt: _diff_text([result], fmt, single=True))
    return EXIT_OK


def _diff_text(results: list, fmt: str, single: bool = False) -> str:
    if fmt in ("json", "yaml"):
        documents = [r.as_json() for r in results]
        return document(documents[0] if single else documents, fmt)
    from .diff import markdown, text

    return "\n".join(markdown(r) if fmt == "markdown" else text(r) for r in results)


@app.command("policy-config", help="The CrossGuard policy-pack config for a stack (for `pulumi preview --policy-pack-config`).")
@stack_option()
@output_options("json", "yaml", default="json")
def policy_config(stack: str | None, out: Output) -> int:
    from sandbox_policy.crossguard import pack_config

    from components.specs.loader import load_stack

    name = resolve_stack(stack, stacks_dir())
    config = pack_config(load_stack(name, stacks_dir()).policy_context(f"stack {name}"))
    out.emit(lambda fmt: document(config, fmt))
    return EXIT_OK


@app.command(help="Check what a stack needs before `pulumi preview`/`up`: tools, cluster, CRDs, classes, images, pins. "
                  "Exit 1 on a blocker.")
@stack_option()
@click.option("--offline", is_flag=True, help="Do not contact the cluster; check what can be checked locally.")
@output_options("table", "json", "yaml")
def doctor(stack: str | None, offline: bool, out: Output) -> int:
    name = resolve_stack(stack, stacks_dir())
    # doctor reads the cluster through the Pulumi SDKs: imported only when it runs, so that
    # the offline commands and completion start without them.
    from . import doctor as doctor_command

    checks = doctor_command.run(name, stacks_dir(), offline)
    out.emit(lambda fmt: doctor_command.render(checks, fmt))
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


@app.group(help="Inspect a stack's effective config.")
def config() -> None:
    pass


@config.command(help="Every effective value and the layer it came from.")
@stack_option()
@output_options("table", "json", "yaml")
def explain(stack: str | None, out: Output) -> int:
    from components.specs.layers import leaves
    from components.specs.loader import key_path, load_layered, spec_from_config

    name = resolve_stack(stack, stacks_dir())
    layered, source = load_layered(name, stacks_dir())
    spec = spec_from_config(layered.config, source=source)
    rows = [
        # A secret's layer recorded its `{secure: ...}` leaf; the spec shows the (redacted) value.
        (key_path(path), value, layered.source_of(path if path in layered.origin else (*path, "secure")))
        for path, value in leaves(spec.model_dump(mode="json", by_alias=True))
    ]
    out.emit(lambda fmt: table(("key", "value", "layer"), [(k, json.dumps(v), layer) for k, v, layer in rows])
             if fmt == "table" else document([{"key": k, "value": v, "layer": layer} for k, v, layer in rows], fmt))
    return EXIT_OK


@app.command(help="A warm pool's replicas from a claim-rate SLO (Erlang loss model).")
@click.option("--rate", required=True, help="Claim rate, e.g. 30/min, 0.5/s, 1800/h; or 24 comma-separated hourly rates.")
@click.option("--ready", required=True, help="Mean time for a new sandbox to become ready, e.g. 8s or 90s.")
@click.option("--target", type=float, help="Warm-hit ratio to meet, e.g. 0.99 (or --p99-latency).")
@click.option("--p99-latency", help="Bound on the p99 claim latency instead of --target, e.g. 2s.")
@click.option("--ready-cv", type=float, default=0.5, show_default=True,
              help="Spread (std/mean) of the ready time; only --p99-latency depends on it.")
@click.option("--plot", type=click.Path(path_type=Path), metavar="FILE.png", help="Draw hit ratio and idle cost against replicas.")
@click.option("--simulate", "simulate_claims", type=click.IntRange(min=3000, max=10_000_000), default=None, metavar="CLAIMS",
              help="Also check the answer by simulating this many claims (one steady rate only).")
@click.option("--slo-window", default="30d", show_default=True,
              help="The SLO window the printed alert thresholds are computed for (monitoring.sloWindow).")
@output_options("table", "json", "yaml")
def size(rate: str, ready: str, target: float | None, p99_latency: str | None, ready_cv: float, plot: Path | None,
         simulate_claims: int | None, slo_window: str, out: Output) -> int:
    from .size import size as size_command

    return size_command(rate, ready, target, p99_latency, ready_cv, plot, simulate_claims or 0, out, slo_window)


@app.command(help="Print a shell completion script: `source <(sandbox-infra completion bash)`, "
                  "or `sandbox-infra completion fish > ~/.config/fish/completions/sandbox-infra.fish`.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    sys.stdout.write(get_completion_class(shell)(app, {}, PROG, "_SANDBOX_INFRA_COMPLETE").source() + "\n")
    return EXIT_OK


# --- the fleet ----------------------------------------------------------------------------


@app.group(cls=FleetGroup, help="Operate on every stack of the fleet file (stacks/fleet.yaml), wave by wave.")
def fleet() -> None:
    pass


def _plan() -> fleet_module.FleetSpec:
    from .fleet import load_fleet

    return load_fleet(SETTINGS.fleet_file, stacks_dir())


@fleet.command("render", help="Render every stack (offline).")
@click.option("--out", "directory", type=click.Path(path_type=Path),
              help="Write <stack>/<object>.yaml files into this (new or empty) directory.")
def fleet_render(directory: Path | None) -> int:
    from components.manifests.stack import render_stack
    from components.specs.loader import load_stack
    from components.upstream import UpstreamLoader

    from .render import manifests_yaml, require_empty, summary, warn_upstream, write_files

    plan = _plan()
    require_empty(directory)
    loader = UpstreamLoader()
    with progress("rendering", len(plan.stacks)) as bar:
        for stack in plan.stacks:
            bar.describe(f"rendering {stack}")
            spec = load_stack(stack, stacks_dir())
            manifests = render_stack(spec, loader)
            if directory:
                write_files(manifests, directory / stack)
            else:
                sys.stdout.write(f"# stack: {stack}\n---\n" + manifests_yaml(manifests))
            note(summary(stack, spec, manifests, directory and directory / stack))
            bar.advance()
    warn_upstream(loader)
    return EXIT_OK


@fleet.command("check", help="Check every stack against the policy rules (offline); SARIF holds one run per stack.")
@output_options(*CHECK_FORMATS)
def fleet_check(out: Output) -> int:
    from . import check as check_command

    return check_command.run_fleet(_plan().stacks, stacks_dir(), out)


def _diffs(base: str) -> list:
    from components.upstream import UpstreamLoader

    from .diff import diff_stack

    plan, loader = _plan(), UpstreamLoader()
    results = []
    with progress(f"diffing against {base}", len(plan.stacks)) as bar:
        for stack in plan.stacks:
            bar.describe(f"diffing {stack} against {base}")
            results.append(diff_stack(stack, base, stacks_dir(), loader))
            bar.advance()
    return results


@fleet.command("diff", help="Diff every stack against a git ref (offline).")
@click.option("--base", required=True, metavar="GIT_REF", help="The ref to compare with, e.g. origin/main.")
@output_options("table", "json", "yaml", "markdown")
def fleet_diff(base: str, out: Output) -> int:
    results = _diffs(base)
    out.emit(lambda fmt: _diff_text(results, fmt))
    return EXIT_OK


@fleet.command("affected", help="Stacks whose rendered objects or policy results differ from a git ref "
                                "(table: their names on one line, for shell loops).")
@click.option("--base", required=True, metavar="GIT_REF", help="The ref to compare with, e.g. origin/main.")
@output_options("table", "json", "yaml")
def fleet_affected(base: str, out: Output) -> int:
    plan = _plan()
    results = _diffs(base)
    affected = [r.stack for r in results if not r.empty or r.policy_introduced or r.policy_fixed]
    from . import fleet as fleet_module

    data = {"base": base, "affected": affected, "stacks": [fleet_module.affected_row(r, plan) for r in results]}
    out.emit(lambda fmt: " ".join(affected) + "\n" if fmt == "table" else document(data, fmt))
    return EXIT_OK


@fleet.command("waves", help="The rollout waves of the fleet file (github-matrix: one line of JSON keyed by wave, "
                             "for the deploy workflow).")
@output_options("table", "json", "yaml", "github-matrix")
def fleet_waves(out: Output) -> int:
    plan = _plan()
    waves = [{"name": w.name, "stacks": w.stacks, "maxParallel": w.max_parallel} for w in plan.waves]
    matrix = {w["name"]: {"stacks": w["stacks"], "maxParallel": w["maxParallel"]} for w in waves}
    out.emit(lambda fmt: table(("wave", "stacks", "max parallel"), [(w.name, ", ".join(w.stacks), w.max_parallel)
                                                                   for w in plan.waves]) if fmt == "table"
             else json.dumps(matrix, separators=(",", ":")) + "\n" if fmt == "github-matrix" else document(waves, fmt))
    return EXIT_OK


@fleet.command("status", help="What each stack runs and when it was last updated (the last needs the Pulumi CLI).")
@output_options("table", "json", "yaml")
def fleet_status(out: Output) -> int:
    from . import fleet as fleet_module
    from .fleet import AutomationOperations, PulumiCliMissing

    plan = _plan()
    try:
        operations: AutomationOperations | None = AutomationOperations(stacks_dir().resolve().parent)
    except PulumiCliMissing:
        operations = None
    rows = fleet_module.status_rows(plan, stacks_dir(), operations)
    out.emit(lambda fmt: fleet_module.status_table(rows) if fmt == "table" else document(rows, fmt))
    if operations is None:
        click.echo("error: last update unknown: no Pulumi CLI on PATH (the columns before it come from stack config)",
                   err=True)
        return EXIT_USAGE
    return EXIT_OK


def rollout_options(function: Callable) -> Callable:
    for option in reversed([
        click.option("-s", "--stack", "only_stacks", multiple=True, metavar="NAME", shell_complete=_complete_stacks,
                     help="Only this stack (repeatable); waves keep their order."),
        click.option("--wave", "only_waves", multiple=True, metavar="NAME", shell_complete=_complete_waves,
                     help="Only the stacks of this wave (repeatable)."),
        click.option("--refresh", is_flag=True, help="Refresh each stack's state from the cluster first (pulumi --refresh)."),
        click.option("--parallel", type=click.IntRange(1, 32), metavar="N",
                     help="At most N stacks of a wave at once [default: the wave's maxParallel]."),
        output_options("table", "json", "yaml"),
    ]):
        function = option(function)
    return function


@fleet.command("preview", help="pulumi preview, wave by wave (needs the Pulumi CLI).")
@rollout_options
def fleet_preview(only_stacks: tuple[str, ...], only_waves: tuple[str, ...], refresh: bool, parallel: int | None,
                  out: Output) -> int:
    from . import fleet as fleet_module
    from .fleet import AutomationOperations

    plan = fleet_module.select(_plan(), list(only_stacks), list(only_waves), parallel)
    operations = AutomationOperations(stacks_dir().resolve().parent, refresh=refresh)
    return _report_run(plan, run_fleet_with_progress(plan, "preview", operations), "preview", out)


@fleet.command("up", help="pulumi up, wave by wave (needs the Pulumi CLI); shows each wave's stacks and their previews, "
                          "then asks for a typed 'yes'.")
@rollout_options
@click.option("-y", "--yes", is_flag=True, help="Roll out without asking (needed where there is no terminal to ask, e.g. CI).")
def fleet_up(only_stacks: tuple[str, ...], only_waves: tuple[str, ...], refresh: bool, parallel: int | None, yes: bool,
             out: Output) -> int:
    from . import fleet as fleet_module
    from .fleet import AutomationOperations

    plan = fleet_module.select(_plan(), list(only_stacks), list(only_waves), parallel)
    operations = AutomationOperations(stacks_dir().resolve().parent, refresh=refresh)
    if not yes:
        confirmed = _confirm_rollout(plan, operations)
        if confirmed is not True:
            return confirmed
    return _report_run(plan, run_fleet_with_progress(plan, "up", operations), "up", out)


def run_fleet_with_progress(plan: fleet_module.FleetSpec, action: fleet_module.Action,
                            operations: fleet_module.StackOperations) -> list[fleet_module.StackOutcome]:
    from .fleet import run_fleet

    with progress(f"fleet {action}", len(plan.stacks)) as bar:
        return run_fleet(plan, action, operations, bar.log, lambda outcome: bar.advance())


def _report_run(plan: fleet_module.FleetSpec, outcomes: list[fleet_module.StackOutcome], action: str, out: Output) -> int:
    from . import fleet as fleet_module

    data = fleet_module.outcomes_document(action, outcomes)
    out.emit(lambda fmt: fleet_module.summary_table(outcomes) if fmt == "table" else document(data, fmt))
    return EXIT_OK if data["succeeded"] else EXIT_FAILED


def _confirm_rollout(plan: fleet_module.FleetSpec, operations: fleet_module.StackOperations) -> bool | int:
    """A rollout changes every cluster of the fleet: never without a typed yes, and never
    before the person typing it has seen what each stack's preview would change."""
    waves = "\n".join(f"  {i}. {w.name}: {', '.join(w.stacks)}" for i, w in enumerate(plan.waves, 1))
    note(f"fleet up will update {len(plan.stacks)} stack(s) in {len(plan.waves)} wave(s):\n{waves}")
    if not sys.stdin.isatty():
        click.echo("error: fleet up needs a confirmation and there is no terminal to ask: pass --yes", err=True)
        return EXIT_USAGE
    note("previewing every stack first (nothing is changed) ...")
    previews = run_fleet_with_progress(plan, "preview", operations)
    from . import fleet as fleet_module

    with output.destination(sys.stderr):
        sys.stderr.write(fleet_module.summary_table(previews))
    bad = [o.stack for o in previews if o.result in ("failed", "blocked")]  # the later waves' are skipped
    if bad:
        click.echo(f"error: the preview of {', '.join(bad)} did not succeed; nothing was changed", err=True)
        return EXIT_FAILED
    sys.stderr.write("Roll out? Type 'yes' to continue: ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        click.echo("error: not confirmed; nothing was changed", err=True)
        return EXIT_USAGE
    return True


# --- running it ---------------------------------------------------------------------------


def _error(message: str) -> None:
    click.echo(f"error: {message}", err=True, color=output.color_enabled(sys.stderr))


def main(argv: list[str] | None = None) -> int:
    output.reset_settings()
    try:
        try:
            result = app.main(args=argv, prog_name=PROG, standalone_mode=False)
        except click.exceptions.NoArgsIsHelpError as error:
            sys.stderr.write(error.ctx.get_help() + "\n" if error.ctx else "")
            return EXIT_USAGE
        except click.UsageError as error:
            _error(error.format_message().rstrip("."))
            if error.ctx is not None:
                note(f"(see '{error.ctx.command_path} --help')")
            return EXIT_USAGE
        except click.Abort:
            _error("interrupted; nothing more was done")
            return EXIT_INTERRUPTED
        except click.ClickException as error:
            _error(error.format_message())
            return error.exit_code
        except PolicyInputError as error:
            _error(str(error))
            return EXIT_USAGE
        return int(result or 0)
    except (PipeClosed, BrokenPipeError):
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """The reader went away (`| head`): say nothing, and keep the interpreter's final flush
    of stdout from raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests capture stdout): nothing will flush to a closed pipe

