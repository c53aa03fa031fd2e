"""`size`: the sizing model on the command line.

    sandbox-infra size --rate 30/min --ready 8s --target 0.99 [-o json] [--plot FILE.png] [--simulate 200000]
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from components.errors import ConfigError
from components.sizing.alerts import DEFAULT_MIN_CLAIMS, AlertPlan, plan_alerts, slo_window_seconds
from components.sizing.alerts import window as window_text
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
from components.sizing.simulation import poisson_arrivals, simulate
from components.sizing.units import format_duration, format_rate, parse_duration, parse_rate

from .output import Output, camel_keys, check_writable_file, document, note, progress

T = TypeVar("T")


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


def _slo_window(text: str) -> float:
    try:
        return slo_window_seconds(text)
    except ValueError as error:
        raise ConfigError(f"--slo-window {text!r}: {error}") from None


def size(rate: str, ready_text: str, target_ratio: float | None, p99_latency: str | None, ready_cv: float,
         plot: Path | None, simulate_claims: int, out: Output, slo_window: str = "30d") -> int:
    rates = _rates(rate)
    _checked("--ready-cv", ready_cv, lambda: ReadyTime(1.0, ready_cv))
    ready = _checked("--ready", ready_text, lambda: ReadyTime(_seconds("--ready", ready_text), ready_cv))
    if plot:
        check_plot_target(plot)
    if simulate_claims and len(rates) != 1:
        raise ConfigError(f"--simulate {simulate_claims}: simulates one steady claim rate; give --rate one rate")
    if (target_ratio is None) == (p99_latency is None):
        raise ConfigError("size: give exactly one of --target RATIO or --p99-latency DURATION")
    target: Target = (
        _checked("--target", target_ratio, lambda: HitRatioTarget(target_ratio)) if target_ratio is not None
        else _checked("--p99-latency", p99_latency, lambda: LatencyTarget(_seconds("--p99-latency", p99_latency), 0.99))
    )
    window = _slo_window(slo_window)
    sizing = _checked("--rate", rate, lambda: size_pool(rates, ready, target))
    # The alerts `monitoring:` would generate for this pool (docs/monitoring.md).
    alerts = plan_alerts(sizing.replicas, rates, ready, target, window, DEFAULT_MIN_CLAIMS)
    if plot:
        from .sizing_plot import plot_sizing  # matplotlib is slow to import; only load it when asked

        try:
            plot_sizing(plot, rates, ready, sizing)
        except OSError as error:
            raise ConfigError(f"--plot {plot}: cannot write ({error.strerror or error})") from None
    result = camel_keys(sizing.summary())
    if simulate_claims:
        result["simulated"] = simulated(sizing.replicas, rates[0], ready, simulate_claims)
    result["alerts"] = alerts.summary()
    out.emit(lambda fmt: describe(sizing, rates, ready, result.get("simulated"), alerts) + "\n" if fmt == "table"
             else document(result, fmt))
    if plot:
        note(f"wrote {plot}")
    return 0


SIMULATION_RUNS = 10


def simulated(replicas: int, rate: float, ready: ReadyTime, claims: int) -> dict[str, float | int]:
    """The model's answer checked by simulation: the pool run over `claims` Poisson claims
    (in independent runs, each a progress step), with the warm-hit ratio's standard error."""
    per_run = max(claims // SIMULATION_RUNS, 300)
    results = []
    with progress(f"simulating {replicas} replicas", SIMULATION_RUNS) as bar:
        for run in range(SIMULATION_RUNS):
            arrivals = poisson_arrivals(rate, per_run, random.Random(f"size-arrivals-{run}"))
            results.append(simulate(replicas, ready, arrivals, seed=run))
            bar.advance()
    hits = sum(r.hits for r in results)
    total = sum(r.claims for r in results)
    mean = hits / total
    spread = (sum((r.hit_ratio - mean) ** 2 for r in results) / (len(results) - 1)) ** 0.5 / len(results) ** 0.5
    return {"claims": total, "hitRatio": round(mean, 6), "standardError": round(spread, 6)}


def describe(sizing: Sizing, rates: list[float], ready: ReadyTime, simulation: dict | None = None,
             alerts: AlertPlan | None = None) -> str:
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
    if simulation:
        lines.append(f"  simulated:     hit ratio {simulation['hitRatio']:.4f} +- {simulation['standardError']:.4f} "
                     f"over {simulation['claims']:,} Poisson claims")
    if sizing.hourly_replicas:
        lines.append(f"  per hour:      {' '.join(str(n) for n in sizing.hourly_replicas)} (what each hour alone needs)")
    if alerts is not None:
        lines.append(f"alerts it would generate (SLO window {window_text(alerts.slo_window)}, "
                     f"miss budget {alerts.budget:.4g}):")
        lines += [f"  {name + ':':<14} {condition}" for name, condition in alerts.rows()]
    return "\n".join(lines)
