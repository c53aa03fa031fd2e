"""Hit ratio and idle cost against pool size, as a PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from components.sizing.model import HOURS_PER_DAY, MAX_REPLICAS, ReadyTime, Sizing, evaluate


def plot_sizing(path: Path, rates: list[float], ready: ReadyTime, sizing: Sizing) -> None:
    top = min(MAX_REPLICAS, max(2 * sizing.replicas, sizing.replicas + 5, sizing.naive_replicas + 2))
    replicas = list(range(top + 1))
    figures = [evaluate(n, rates, ready.mean) for n in replicas]
    hit = [h for h, _ in figures]
    idle_hours = [idle * HOURS_PER_DAY for _, idle in figures]

    # Figure without pyplot: no global state and no display backend needed.
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    axes.plot(replicas, hit, color="tab:blue", marker=".", label="warm-hit ratio")
    axes.axvline(sizing.replicas, color="tab:green", linestyle="--",
                 label=f"model: {sizing.replicas} replicas ({sizing.target})")
    axes.axvline(sizing.naive_replicas, color="tab:red", linestyle=":",
                 label=f"naive ceil(rate x ready): {sizing.naive_replicas}")
    axes.set_xlabel("replicas")
    axes.set_ylabel("warm-hit ratio", color="tab:blue")
    axes.set_ylim(0, 1.02)
    cost = axes.twinx()
    cost.plot(replicas, idle_hours, color="tab:orange", label="idle pod-hours/day")
    cost.set_ylabel("idle pod-hours per day", color="tab:orange")
    axes.xaxis.get_major_locator().set_params(integer=True)
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    axes.set_title(f"Warm pool sizing: offered load {sizing.offered_load:.2f}, ready time {ready.mean:g}s")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
