"""Discrete-event simulation of a warm pool, to check the sizing model.

The pool keeps `replicas` sandboxes. Each claim takes a ready one if there is
one (a hit) and the pool starts a replacement that becomes ready after a drawn
ready time; a claim that finds none ready is a miss (a cold create, whose
latency is its own drawn ready time). Nothing here uses the Erlang formula.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .model import ReadyTime


def ready_sampler(ready: ReadyTime, rng: random.Random) -> Callable[[], float]:
    """Draws ready times: lognormal with the given mean and cv (constant when cv = 0)."""
    if ready.cv == 0:
        return lambda: ready.mean
    mu, sigma = ready.log_params
    draw = rng.lognormvariate
    return lambda: draw(mu, sigma)


def poisson_arrivals(rate: float, count: int, rng: random.Random) -> Iterator[float]:
    """`count` claim times (seconds) of a Poisson process with `rate` claims per second."""
    now = 0.0
    gap = rng.expovariate
    for _ in range(count):
        now += gap(rate)
        yield now


def bursty_arrivals(rate: float, mean_burst: float, count: int, rng: random.Random) -> Iterator[float]:
    """Claims in bursts (a batch job starting several agents at once): bursts arrive
    as a Poisson process, each with a geometric number of claims (mean `mean_burst`)
    at the same instant; the long-run rate is still `rate`."""
    now, emitted = 0.0, 0
    keep_going = 1 - 1 / mean_burst
    while emitted < count:
        now += rng.expovariate(rate / mean_burst)
        size = 1
        while rng.random() < keep_going:
            size += 1
        for _ in range(min(size, count - emitted)):
            emitted += 1
            yield now


@dataclass(frozen=True)
class SimulationResult:
    claims: int
    hits: int
    hit_ratio: float
    std_error: float
    """Of the hit ratio, by batch means (claims in a loss system are correlated)."""
    idle_replicas: float
    """Time-average number of ready, unclaimed sandboxes."""
    cold_latencies: tuple[float, ...]
    """Latency of every missed claim (its cold create), for latency targets."""
    cold_batches: tuple[int, ...]
    """The batch each missed claim fell into (for the standard error of latency shares)."""
    batches: int

    def latency_exceeds(self, bound: float) -> tuple[float, float]:
        """(share of claims slower than `bound` seconds, its standard error).

        Hits take WARM_CLAIM_SECONDS, below any bound a latency target accepts.
        """
        per_batch = [0] * self.batches
        for batch, latency in zip(self.cold_batches, self.cold_latencies, strict=True):
            per_batch[batch] += latency > bound
        return _mean_and_error(per_batch, self.claims // self.batches)


def simulate(
    replicas: int,
    ready: ReadyTime,
    arrivals: Iterable[float],
    seed: int = 0,
    warmup: float = 0.1,
    batches: int = 30,
) -> SimulationResult:
    """Run the pool over `arrivals` (sorted claim times in seconds).

    The pool starts full; the first `warmup` share of claims is discarded so the
    figures describe the steady state.
    """
    times = list(arrivals)
    if len(times) < batches * 10:
        raise ValueError(f"need at least {batches * 10} claims to simulate, got {len(times)}")
    draw = ready_sampler(ready, random.Random(f"ready-{seed}"))
    skip = int(len(times) * warmup)
    measured = len(times) - skip
    batch_size = measured // batches
    batch_hits = [0] * batches

    pending: list[float] = []  # completion times of sandboxes being replenished
    push, pop = heapq.heappush, heapq.heappop
    ready_now = replicas
    area = 0.0  # integral of ready sandboxes over measured time
    last = start = times[skip - 1] if skip else 0.0
    cold: list[float] = []
    cold_batch: list[int] = []
    end = skip + batch_size * batches  # claims after the last full batch are not measured
    for index, now in enumerate(times[:end]):
        measuring = index >= skip
        while pending and pending[0] <= now:
            done = pop(pending)
            if measuring:
                area += ready_now * (done - last)
                last = done
            ready_now += 1
        if measuring:
            area += ready_now * (now - last)
            last = now
        if ready_now:
            ready_now -= 1
            push(pending, now + draw())
            if measuring:
                batch_hits[(index - skip) // batch_size] += 1
        elif measuring:
            cold.append(draw())
            cold_batch.append((index - skip) // batch_size)
    hit_ratio, std_error = _mean_and_error(batch_hits, batch_size)
    return SimulationResult(
        claims=batch_size * batches,
        hits=sum(batch_hits),
        hit_ratio=hit_ratio,
        std_error=std_error,
        idle_replicas=area / (last - start) if last > start else float(replicas),
        cold_latencies=tuple(cold),
        cold_batches=tuple(cold_batch),
        batches=batches,
    )


def _mean_and_error(counts: list[int], batch_size: int) -> tuple[float, float]:
    """Mean share and its standard error by batch means."""
    shares = [c / batch_size for c in counts]
    mean = sum(shares) / len(shares)
    variance = sum((s - mean) ** 2 for s in shares) / (len(shares) - 1)
    return mean, math.sqrt(variance / len(shares))
