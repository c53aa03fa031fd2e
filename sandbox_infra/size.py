"""`size`: the sizing model on the command line.

    python -m sandbox_infra size --rate 30/min --ready 8s --target 0.99 [--format json] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from components.errors import ConfigError
from components.sizing.model import (
    HOURS_PER_DAY,
    HitRatioTarget,
    LatencyTarget,
    ReadyTime,
    Sizing,
    SizingError,
    Target,
    size_pool,
)
from components.sizing.units import RATE_HELP, format_duration, format_rate, parse_duration, parse_rate

T = TypeVar("T")


def add_size_parser(commands: argparse._SubParsersAction) -> None:
    size = commands.add_parser("size", help="compute a warm pool's replicas from a claim-rate SLO")
    size.add_argument("--rate", required=True,
                      help=f"claim rate, {RATE_HELP}; or {HOURS_PER_DAY} comma-separated hourly rates")
    size.add_argument("--ready", required=True, help="mean time for a new sandbox to become ready, e.g. 8s or 90s")
    target = size.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", type=float, help="warm-hit ratio to meet, e.g. 0.99")
    target.add_argument("--p99-latency", help="bound on the p99 claim latency instead, e.g. 2s")
    size.add_argument("--ready-cv", type=float, default=0.5,
                      help="spread (std/mean) of the ready time; only --p99-latency depends on it (default 0.5)")
    size.add_argument("--format", choices=("text", "json"), default="text")
    size.add_argument("--plot", type=Path, metavar="FILE.png", help="draw hit ratio and idle cost against replicas")


def _rates(text: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (1, HOURS_PER_DAY):
        raise ConfigError(f"--rate {text!r}: give one rate or {HOURS_PER_DAY} comma-separated hourly rates, got {len(parts)}")
    try:
        rates = [parse_rate(p) for p in parts]
    except ValueError as error:
        raise ConfigError(f"--rate {text!r}: {error}") from None
    if sum(rates) <= 0:
        raise ConfigError(f"--rate {text!r}: must be greater than zero")
    return rates


def _seconds(flag: str, text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise ConfigError(f"{flag} {text!r}: {error}") from None
    if seconds <= 0:
        raise ConfigError(f"{flag} {text!r}: must be greater than zero")
    return seconds


def _checked(flag: str, value: object, make: Callable[[], T]) -> T:
    try:
        return make()
    except SizingError as error:
        raise ConfigError(f"{flag} {value!r}: {error}") from None


# What matplotlib's Figure.savefig writes without extra packages, by file suffix.
PLOT_FORMATS = ("eps", "jpeg", "jpg", "pdf", "pgf", "png", "ps", "raw", "rgba", "svg", "svgz", "tif", "tiff", "webp")


def check_plot_target(path: Path) -> None:
    """Say what is wrong with --plot's target before computing anything."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise ConfigError(f"--plot {path}: unknown image format {path.suffix or '(no suffix)'!r}; "
                          f"allowed suffixes: {', '.join('.' + f for f in PLOT_FORMATS)}")
    check_writable_file("--plot", path)


def check_writable_file(flag: str, path: Path) -> None:
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


def size(args: argparse.Namespace) -> int:
    rates = _rates(args.rate)
    _checked("--ready-cv", args.ready_cv, lambda: ReadyTime(1.0, args.ready_cv))
    ready = _checked("--ready", args.ready, lambda: ReadyTime(_seconds("--ready", args.ready), args.ready_cv))
    if args.plot:
        check_plot_target(args.plot)
    target: Target = (
        _checked("--target", args.target, lambda: HitRatioTarget(args.target)) if args.target is not None
        else _checked("--p99-latency", args.p99_latency,
                      lambda: LatencyTarget(_seconds("--p99-latency", args.p99_latency), 0.99))
    )
    sizing = _checked("--rate", args.rate, lambda: size_pool(rates, ready, target))
    if args.plot:
        from .sizing_plot import plot_sizing  # matplotlib is slow to import; only load it when asked

        try:
            plot_sizing(args.plot, rates, ready, sizing)
        except OSError as error:
            raise ConfigError(f"--plot {args.plot}: cannot write ({error.strerror or error})") from None
    if args.format == "json":
        print(json.dumps(sizing.summary()))
    else:
        print(describe(sizing, rates, ready))
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def describe(sizing: Sizing, rates: list[float], ready: ReadyTime) -> str:
    demand = (
        f"{format_rate(rates[0])} claims" if len(rates) == 1
        else f"24-hour profile {format_rate(min(rates))}..{format_rate(max(rates))} claims"
    )
    lines = [
        f"warm pool for {demand}, ready time {format_duration(ready.mean)}, target {sizing.target}",
        f"  replicas:      {sizing.replicas}",
        f"  hit ratio:     {sizing.hit_ratio:.4f}",
        f"  idle replicas: {sizing.idle_replicas:.2f} on average",
        f"  idle cost:     {sizing.idle_pod_hours_per_day:.1f} pod-hours/day",
        f"  model:         Erlang loss, offered load {sizing.offered_load:.2f} (rate x ready time)",
        f"  naive rule:    ceil(rate x ready) = {sizing.naive_replicas} replicas -> hit ratio {sizing.naive_hit_ratio:.4f}",
    ]
    if sizing.hourly_replicas:
        lines.append(f"  per hour:      {' '.join(str(n) for n in sizing.hourly_replicas)} (what each hour alone needs)")
    return "\n".join(lines)
