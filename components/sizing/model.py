"""The sizing model: a warm pool is an Erlang loss system (M/G/N/N).

A pool of N replicas has N slots. A claim that finds a ready sandbox takes it (a
warm hit) and the pool starts a replacement at once, which occupies the slot for
one ready time. A claim that finds every slot still replenishing is lost to the
pool and falls back to a cold create. With Poisson claims at rate r and a mean
ready time T, the share of claims that miss is Erlang's B(N, A) with offered
load A = r * T, for any ready-time distribution with that mean (the formula is
insensitive to its shape). docs/sizing.md writes out the assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_REPLICAS = 1000  # the same cap as a pool's `replicas` field
HOURS_PER_DAY = 24
# A claim served from the pool binds a running sandbox in about this long; a claim
# latency bound at or below it cannot be met by any pool.
WARM_CLAIM_SECONDS = 0.1


class SizingError(ValueError):
    """The target cannot be met (or the inputs make no sense)."""


@dataclass(frozen=True)
class ReadyTime:
    """Seconds from starting a sandbox to it being ready to claim.

    Only the mean enters the hit ratio. A claim-latency target also needs the
    tail of the cold-start time (a miss waits for a whole cold create), taken
    from a lognormal with coefficient of variation `cv` (0 = always the mean).
    """

    mean: float
    cv: float = 0.5

    def __post_init__(self) -> None:
        if not self.mean > 0 or not math.isfinite(self.mean):
            raise SizingError(f"ready time must be a positive number of seconds, got {self.mean!r}")
        if not 0 <= self.cv <= 10:
            raise SizingError(f"ready-time cv must be between 0 and 10, got {self.cv!r}")

    @property
    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the lognormal with this mean and cv."""
        sigma2 = math.log1p(self.cv**2)
        return math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)

    def exceeds(self, seconds: float) -> float:
        """P(ready time > seconds)."""
        if self.cv == 0:
            return 1.0 if self.mean > seconds else 0.0
        if seconds <= 0:
            return 1.0
        mu, sigma = self.log_params
        return 0.5 * math.erfc((math.log(seconds) - mu) / (sigma * math.sqrt(2)))


@dataclass(frozen=True)
class HitRatioTarget:
    """At least this share of claims are served warm from the pool."""

    hit_ratio: float

    def __post_init__(self) -> None:
        if not 0 < self.hit_ratio < 1:
            raise SizingError(f"hit-ratio target must be between 0 and 1 (exclusive), got {self.hit_ratio!r}")

    def max_miss_ratio(self, ready: ReadyTime) -> float:
        return 1 - self.hit_ratio

    def describe(self) -> str:
        return f"hit ratio >= {self.hit_ratio:g}"


@dataclass(frozen=True)
class LatencyTarget:
    """The `quantile` of claim latency stays at or below `bound` seconds.

    A warm hit is served in about WARM_CLAIM_SECONDS; a miss waits for a cold
    create. P(latency > bound) = miss ratio * P(ready time > bound), so the pool
    may miss at most (1 - quantile) / P(ready time > bound) of the claims.
    """

    bound: float
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if not self.bound > WARM_CLAIM_SECONDS:
            raise SizingError(
                f"claim-latency bound must exceed the {WARM_CLAIM_SECONDS:g} s a warm claim takes, got {self.bound!r} s"
            )
        if not 0 < self.quantile < 1:
            raise SizingError(f"latency quantile must be between 0 and 1 (exclusive), got {self.quantile!r}")

    def max_miss_ratio(self, ready: ReadyTime) -> float:
        slow = ready.exceeds(self.bound)
        return 1.0 if slow == 0 else min(1.0, (1 - self.quantile) / slow)

    def describe(self) -> str:
        return f"p{self.quantile * 100:g} claim latency <= {self.bound:g}s"


Target = HitRatioTarget | LatencyTarget


@dataclass(frozen=True)
class Sizing:
    """The smallest pool meeting a target, and what it costs."""

    replicas: int
    hit_ratio: float
    """Share of claims served warm (claim-weighted over the day for a profile)."""
    idle_replicas: float
    """Ready, unclaimed sandboxes on average (what the pool keeps waiting)."""
    idle_pod_hours_per_day: float
    offered_load: float
    """Sandboxes being replenished on average if every claim hit: rate x ready time."""
    target: str
    naive_replicas: int
    """The rule of thumb ceil(rate x ready time) (peak rate for a profile)."""
    naive_hit_ratio: float
    hourly_replicas: tuple[int, ...] = ()
    """For a 24-hour profile: what each hour alone would need (at most the replica cap)."""

    def summary(self) -> dict[str, float | int]:
        """The headline figures (the CLI's JSON output)."""
        return {
            "replicas": self.replicas,
            "hit_ratio": round(self.hit_ratio, 6),
            "idle_replicas": round(self.idle_replicas, 4),
            "idle_pod_hours_per_day": round(self.idle_pod_hours_per_day, 2),
        }


def erlang_b(servers: int, load: float) -> float:
    """Erlang's loss formula B(servers, load), by the stable recursion."""
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def _demand(rates: Sequence[float]) -> list[float]:
    rates = [float(r) for r in rates]
    if len(rates) not in (1, HOURS_PER_DAY):
        raise SizingError(f"give one claim rate or {HOURS_PER_DAY} hourly rates, got {len(rates)}")
    if any(not math.isfinite(r) or r < 0 for r in rates) or sum(rates) <= 0:
        raise SizingError("claim rates must be finite, non-negative and not all zero")
    return rates


def evaluate(replicas: int, rates: Sequence[float], ready_mean: float) -> tuple[float, float]:
    """(hit ratio, idle replicas) of a pool of `replicas` at these claim rates (per second).

    Several rates are equally long periods (the hours of a day): the hit ratio is
    weighted by claims, the idle count by time.
    """
    rates = _demand(rates)
    hits = idle = 0.0
    for rate in rates:
        load = rate * ready_mean
        miss = erlang_b(replicas, load)
        hits += rate * (1 - miss)
        idle += replicas - load * (1 - miss)
    return hits / sum(rates), idle / len(rates)


def size_pool(
    rates: Sequence[float],
    ready: ReadyTime,
    target: Target,
    max_replicas: int = MAX_REPLICAS,
) -> Sizing:
    """The smallest replica count whose (claim-weighted) miss ratio meets `target`.

    `rates` are claims per second: one steady rate, or 24 hourly rates whose
    claims the target is measured over (a daily SLO window).
    """
    rates = _demand(rates)
    allowed_miss = target.max_miss_ratio(ready)
    loads = [r * ready.mean for r in rates]
    total = sum(rates)
    blocking = [1.0] * len(rates)  # B(0, A) = 1 for every hour
    replicas = 0
    # Walk N upwards with the Erlang recursion for every hour at once: O(N x hours).
    while sum(r * b for r, b in zip(rates, blocking, strict=True)) / total > allowed_miss:
        replicas += 1
        if replicas > max_replicas:
            miss = sum(r * b for r, b in zip(rates, blocking, strict=True)) / total
            raise SizingError(
                f"{target.describe()} needs more than {max_replicas} replicas "
                f"(offered load {max(loads):.1f}; {max_replicas} replicas still miss {miss:.2%} of claims); "
                "lower the target, shorten the ready time or split the demand over several pools"
            )
        blocking = [a * b / (replicas + a * b) for a, b in zip(loads, blocking, strict=True)]
    hit_ratio, idle = evaluate(replicas, rates, ready.mean)
    naive = math.ceil(max(loads))
    return Sizing(
        replicas=replicas,
        hit_ratio=hit_ratio,
        idle_replicas=idle,
        idle_pod_hours_per_day=idle * HOURS_PER_DAY,
        offered_load=sum(loads) / len(loads),
        target=target.describe(),
        naive_replicas=naive,
        naive_hit_ratio=evaluate(naive, rates, ready.mean)[0],
        hourly_replicas=tuple(_smallest_pool(load, allowed_miss, max_replicas) for load in loads) if len(rates) > 1 else (),
    )


def _smallest_pool(load: float, allowed_miss: float, max_replicas: int) -> int:
    """The fewest replicas with B(N, load) <= allowed_miss (max_replicas if even that is too few)."""
    blocking, replicas = 1.0, 0
    while blocking > allowed_miss and replicas < max_replicas:
        replicas += 1
        blocking = load * blocking / (replicas + load * blocking)
    return replicas


def max_offered_load(replicas: int, allowed_miss: float, start: float | None = None) -> float:
    """The largest offered load a pool of `replicas` carries with B <= allowed_miss.

    Newton's method on B(N, A) = allowed_miss (B rises monotonically with A, and
    dB/dA = B (N/A - 1 + B)); `start` is a guess from a neighbouring N.
    """
    if replicas == 0 or allowed_miss >= 1:
        return 0.0 if replicas == 0 else math.inf
    load = start if start and start > 0 else max(allowed_miss, replicas * 0.5)
    for _ in range(100):
        blocking = erlang_b(replicas, load)
        slope = blocking * (replicas / load - 1 + blocking)
        step = (blocking - allowed_miss) / slope
        # Damped: never jump past zero or more than doubling.
        load = min(max(load - step, load / 2), load * 2)
        if abs(step) <= 1e-12 * max(1.0, load):
            break
    while erlang_b(replicas, load) > allowed_miss:  # land on the feasible side of the root
        load *= 1 - 1e-12
    return load
