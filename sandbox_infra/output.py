"""The command line's one output layer: formats, files, colour, tables and progress.

Every command that prints a result takes `-o/--output FORMAT` (the formats that apply
to it) and `--output-file PATH`; the result goes to stdout or that file, and everything
meant for a person watching (summaries, warnings, progress) goes to stderr. JSON and
YAML documents use camelCase keys throughout, like the Kubernetes and Pulumi APIs
(docs/cli.md lists each document's shape).
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from components.errors import ConfigError

# Names older versions used (`--format text`), still accepted.
FORMAT_ALIASES = {"text": "table"}


@dataclass
class Settings:
    """Options accepted anywhere on the command line (before or after the subcommand)."""

    stacks_dir: Path | None = None
    no_color: bool = False
    fleet_file: Path | None = None


SETTINGS = Settings()


def reset_settings() -> None:
    """Each run starts from the defaults (tests call `main` many times in one process)."""
    vars(SETTINGS).update(vars(Settings()))


def color_enabled(stream: Any) -> bool:
    """Colour only for a person at a terminal: never with --no-color or NO_COLOR (no-color.org)."""
    if SETTINGS.no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console() -> Console:
    """A Rich console on stderr as it is at the moment (tests swap sys.stderr)."""
    stream = sys.stderr
    terminal = bool(getattr(stream, "isatty", None) and stream.isatty())
    # A terminal without colour still gets a live progress bar; off a terminal nothing wraps.
    return Console(file=stream, force_terminal=terminal, no_color=not color_enabled(stream), highlight=False,
                   soft_wrap=True, width=None if terminal else 10_000)


def note(message: str) -> None:
    """A line for the person watching, on stderr."""
    console().print(message, markup=False)


def warn(message: str) -> None:
    console().print(f"warning: {message}", style="yellow", markup=False)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]],
          styles: Callable[[Sequence[str]], str] | None = None) -> str:
    """Plain aligned columns (kubectl's look), a header row in bold; `styles(row)` colours a row
    (only when the table is bound for a terminal: see `destination`)."""
    color = _DESTINATION.get()
    color = color_enabled(sys.stdout) if color is None else color
    grid = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold" if color else None)
    for header in headers:
        grid.add_column(header.upper(), overflow="fold")
    for row in rows:
        cells = [str(cell) for cell in row]
        grid.add_row(*cells, style=(styles(cells) or None) if styles and color else None)
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=color, no_color=not color, width=10_000, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


RESULT_STYLES = {"succeeded": "green", "ok": "green", "passed": "green", "failed": "red", "fail": "red",
                 "blocked": "red", "mandatory": "red", "warn": "yellow", "advisory": "yellow", "skipped": "dim",
                 "skip": "dim", "excepted": "dim"}


def style_by(column: int) -> Callable[[Sequence[str]], str]:
    return lambda row: RESULT_STYLES.get(row[column], "")


_DESTINATION: ContextVar[bool | None] = ContextVar("colour for the text being made", default=None)


@contextmanager
def destination(stream: Any | None) -> Iterator[None]:
    """Text made inside is bound for `stream` (None: a file): coloured only for a terminal."""
    token = _DESTINATION.set(color_enabled(stream) if stream is not None else False)
    try:
        yield
    finally:
        _DESTINATION.reset(token)


# --- machine-readable documents --------------------------------------------------------


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, default=str) + "\n"


def to_yaml(document: Any) -> str:
    return yaml.safe_dump(json.loads(json.dumps(document, default=str)), sort_keys=False, width=120)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def camel_keys(document: dict[str, Any]) -> dict[str, Any]:
    """A flat document whose keys some library wrote in snake_case, in this CLI's casing."""
    return {camel(key): value for key, value in document.items()}


def document(data: Any, fmt: str) -> str:
    """A JSON or YAML rendering of the same data."""
    return to_yaml(data) if fmt == "yaml" else to_json(data)


# --- where the result goes ---------------------------------------------------------------


def check_writable_file(flag: str, path: Path) -> None:
    """Say what is wrong with an output file's path before any work is done."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{flag} {path}: is a dangling symbolic link; remove it or give another name")
    # Missing directories are created; the nearest existing one must be a writable directory.
    existing = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: cannot be created: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable (permission denied)")


@dataclass
class Output:
    """A command's chosen formats and destinations. `-o` may repeat: the n-th `--output-file`
    takes the n-th format, and at most one format is left over for stdout; so one run can
    write a SARIF file and print Markdown (the work is done once, whatever the formats)."""

    formats: list[str]
    files: list[Path]

    def __post_init__(self) -> None:
        if len(self.files) > len(self.formats):
            raise ConfigError(f"--output-file {self.files[len(self.formats)]}: has no -o/--output format of its own; "
                              "give one -o FORMAT per --output-file, in the same order")
        if len(self.formats) > len(self.files) + 1:
            raise ConfigError(f"-o/--output: {len(self.formats) - len(self.files)} formats would go to stdout "
                              f"({', '.join(self.formats[len(self.files):])}); give each but one an --output-file")
        for path in self.files:
            check_writable_file("--output-file", path)

    def emit(self, render: Callable[[str], str]) -> None:
        """Write the result in each chosen format; `render(format)` makes the text."""
        for fmt, path in zip(self.formats, [*self.files, None], strict=False):
            with destination(sys.stdout if path is None else None):
                text = render(fmt)
            if path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"--output-file {path}: cannot write ({error.strerror or error})") from None
            note(f"wrote {path} ({fmt})")


# --- progress ---------------------------------------------------------------------------


class Progress:
    """Progress of long work on stderr, for a person at a terminal; silent otherwise
    (a CI log or a pipe gets the result, not a redrawn bar)."""

    def __init__(self, bar: Any | None, task: Any | None) -> None:
        self._bar, self._task = bar, task

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1)

    def describe(self, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=description)

    def log(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Progress]:
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield Progress(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Bar(*columns, console=console(), transient=True) as bar:
        yield Progress(bar, bar.add_task(description, total=total))
