"""What to alert on for a pool sized by the model: burn-rate thresholds and model limits.

The SLI is the miss ratio: the share of claims not served by a ready warm sandbox. The
pool's SLO allows `budget` of them (1 - hit ratio, or for a latency target the miss
ratio the model allows, `Target.max_miss_ratio`). Alerts follow the multiwindow,
multi-burn-rate scheme of the Google SRE workbook (chapter 5, table 5-8), as Sloth
generates it: an alert fires when both a long and a short window consumed error budget
faster than `burn_rate` times the even pace, where

    burn_rate = share of the budget consumed in the long window x SLO window / long window

so the thresholds follow from the pool's own target (budget) and SLO window, e.g. 14.4
for 2 % of a 30-day budget in one hour, 13.44 for a 28-day window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .model import ReadyTime, Target, max_offered_load

HOUR = 3600.0
DEFAULT_SLO_WINDOW = "30d"
DEFAULT_MIN_CLAIMS = 10
MIN_SLO_WINDOW, MAX_SLO_WINDOW = 24 * HOUR, 90 * 24 * HOUR
_WINDOW = re.compile(r"^(?P<num>[1-9][0-9]{0,5})(?P<unit>d|h)$")


def slo_window_seconds(text: str) -> float:
    """Seconds of an SLO window written as `30d` or `672h`; ValueError says what is allowed."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError("must be a whole number of days or hours such as 30d, 28d or 168h")
    seconds = int(match["num"]) * (24 * HOUR if match["unit"] == "d" else HOUR)
    if not MIN_SLO_WINDOW <= seconds <= MAX_SLO_WINDOW:
        raise ValueError("must be between 1d and 90d (the alert windows are 1h to 3d)")
    return seconds


@dataclass(frozen=True)
class BurnWindow:
    severity: str
    """`page` (critical: wake someone) or `ticket` (warning: look at it this week)."""
    long: float
    short: float
    """Seconds; the short window (1/12 of the long) lets the alert resolve soon after the burn stops."""
    budget_consumed: float
    """Share of the whole SLO window's error budget that fires the alert within `long`."""


# The SRE workbook's recommendation for a 30-day SLO (also Sloth's defaults).
WORKBOOK_WINDOWS = (
    BurnWindow("page", 1 * HOUR, 5 * 60, 0.02),
    BurnWindow("page", 6 * HOUR, 30 * 60, 0.05),
    BurnWindow("ticket", 24 * HOUR, 2 * HOUR, 0.10),
    BurnWindow("ticket", 72 * HOUR, 6 * HOUR, 0.10),
)
# Claim rate over this window is compared with what the pool can carry.
RATE_WINDOW = 1 * HOUR
# Cold ready time: mean over this window against the configured readyTime.
READY_TIME_WINDOW = 1 * HOUR
# A pool with no ready sandbox while claims arrive: after this long.
EMPTY_FOR = 2 * 60
# How many standard deviations of Poisson noise the claim-rate alert tolerates.
RATE_NOISE_SIGMAS = 3.0


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    long: float
    short: float
    burn_rate: float
    threshold: float
    """Miss ratio both windows must exceed: burn_rate x budget."""
    min_claims: int
    """Claims the long window must hold: never fewer than 1 / threshold, so one miss alone cannot fire."""


@dataclass(frozen=True)
class AlertPlan:
    budget: float
    """The miss ratio the SLO allows."""
    slo_window: float
    burn_alerts: tuple[BurnAlert, ...]
    sized_rate: float
    """Claims per second the pool was sized for (the busiest hour, or the autoscaler's high rate)."""
    capacity_rate: float
    """Claims per second at which the pool's (maximum) replicas just meet the target."""
    rate_threshold: float
    """The claim-rate alert: capacity plus RATE_NOISE_SIGMAS of Poisson noise over RATE_WINDOW."""
    ready_time: float
    """Seconds: the configured mean ready time the cold-ready alert compares with."""
    scale: float = 1.0
    """Every window multiplied by this (1 in production; tests compress time)."""

    def rows(self) -> list[tuple[str, str]]:
        """(alert, condition) lines, as `sandbox-infra size` prints them."""
        rows = []
        for a in self.burn_alerts:
            condition = (f"miss ratio > {a.threshold:.4g} over {window(a.long)} and {window(a.short)} "
                         f"(burn rate {a.burn_rate:.4g}; at least {a.min_claims} claims)")
            if a.threshold >= 1:
                condition = f"never: {a.burn_rate:.4g}x a budget of {self.budget:.4g} exceeds every claim"
            rows.append((f"{a.severity} {window(a.long)}", condition))
        rows.append(("claim rate", f"> {self.rate_threshold * 60:.4g}/min over {window(self.rate_window)} "
                     f"(sized for {self.sized_rate * 60:.4g}/min; replicas meet the target up to "
                     f"{self.capacity_rate * 60:.4g}/min)" if math.isfinite(self.rate_threshold)
                     else "never (the target allows every claim to miss)"))
        rows.append(("cold ready", f"mean > {self.ready_time:g}s over {window(self.ready_time_window)}"))
        rows.append(("pool empty", f"no ready sandbox for {window(EMPTY_FOR * self.scale)} while claims arrive"))
        return rows

    def summary(self) -> dict[str, object]:
        """The thresholds as data (the CLI's JSON output)."""
        return {
            "sloWindow": window(self.slo_window),
            "missBudget": round(self.budget, 6),
            "burnRate": [{"severity": a.severity, "longWindow": window(a.long), "shortWindow": window(a.short),
                          "burnRate": round(a.burn_rate, 4), "missRatio": round(a.threshold, 6),
                          "minClaims": a.min_claims} for a in self.burn_alerts],
            "claimRatePerMinute": round(self.rate_threshold * 60, 4) if math.isfinite(self.rate_threshold) else None,
            "coldReadySeconds": self.ready_time,
        }

    @property
    def rate_window(self) -> float:
        return RATE_WINDOW * self.scale

    @property
    def ready_time_window(self) -> float:
        return READY_TIME_WINDOW * self.scale


def window(seconds: float) -> str:
    """A duration as Prometheus writes it (whole seconds at least): 5m, 1h, 3d, 36s."""
    whole = max(1, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def burn_alerts(budget: float, slo_window: float, min_claims: int, scale: float = 1.0) -> tuple[BurnAlert, ...]:
    """`slo_window` in real seconds; `scale` only shortens the windows the alerts look at."""
    alerts = []
    for window in WORKBOOK_WINDOWS:
        burn = window.budget_consumed * slo_window / window.long
        threshold = burn * budget
        floor = math.ceil(1 / threshold - 1e-9) if threshold < 1 else 1
        alerts.append(BurnAlert(window.severity, window.long * scale, window.short * scale, burn, threshold,
                                max(min_claims, floor)))
    return tuple(alerts)


def plan_alerts(replicas: int, rates: Sequence[float], ready: ReadyTime, target: Target, slo_window: float,
                min_claims: int, scale: float = 1.0) -> AlertPlan:
    """Thresholds for a pool of `replicas` sized for `rates` (claims per second) and `target`."""
    budget = target.max_miss_ratio(ready)
    capacity = max_offered_load(replicas, budget) / ready.mean if budget < 1 else math.inf
    window = RATE_WINDOW * scale
    noise = RATE_NOISE_SIGMAS * math.sqrt(capacity / window) if math.isfinite(capacity) else 0.0
    return AlertPlan(
        budget=budget,
        slo_window=slo_window,
        burn_alerts=burn_alerts(budget, slo_window, min_claims, scale),
        sized_rate=max(rates),
        capacity_rate=capacity,
        rate_threshold=capacity + noise,
        ready_time=ready.mean,
        scale=scale,
    )
