"""The discrete-event simulation agrees with the model, and the proof's judgement is sound.

Small seeded runs (tens of thousands of claims, well under a second each); the
full grid is `python -m components.sizing.proof` (docs/sizing.md has its output).
"""

from __future__ import annotations

import random

import pytest

from components.sizing.model import HitRatioTarget, LatencyTarget, ReadyTime, erlang_b, evaluate, size_pool
from components.sizing.proof import judge
from components.sizing.simulation import bursty_arrivals, poisson_arrivals, simulate

CLAIMS = 60_000
TOLERANCE_SE = 4  # a correct model lands within 4 standard errors of a seeded run


def run(replicas: int, rate: float, ready: ReadyTime, seed: int = 3, claims: int = CLAIMS):
    return simulate(replicas, ready, poisson_arrivals(rate, claims, random.Random(seed)), seed=seed)


@pytest.mark.parametrize(
    ("rate", "ready", "replicas", "idle_tolerance"),
    [
        (0.5, ReadyTime(8, 0.0), 10, 0.03),
        (0.5, ReadyTime(8, 1.0), 6, 0.03),  # idle 2.47, where "N - A" would say 2.0
        (2.0, ReadyTime(15, 2.0), 40, 0.06),  # heavy-tailed ready times: the time average converges slowly
        (0.05, ReadyTime(90, 0.5), 7, 0.03),
    ],
)
def test_simulated_hit_ratio_and_idle_match_the_model(
    rate: float, ready: ReadyTime, replicas: int, idle_tolerance: float
) -> None:
    result = run(replicas, rate, ready)
    hit, idle = evaluate(replicas, [rate], ready.mean)
    assert abs(result.hit_ratio - hit) <= TOLERANCE_SE * result.std_error + 1e-4
    assert result.idle_replicas == pytest.approx(idle, rel=idle_tolerance)


def test_model_size_meets_the_target_and_one_fewer_does_not() -> None:
    # 30/min, ready 8s (lognormal cv 1): model N = 10 with a clear margin on both sides
    # (B(10) = 0.53 %, B(9) = 1.33 %), so a seeded run separates them.
    rate, ready = 0.5, ReadyTime(8, 1.0)
    sizing = size_pool([rate], ready, HitRatioTarget(0.99))
    at_n, below = run(sizing.replicas, rate, ready), run(sizing.replicas - 1, rate, ready)
    assert at_n.hit_ratio >= 0.99 > below.hit_ratio
    verdict = judge(0.01, (1 - at_n.hit_ratio, at_n.std_error), (1 - below.hit_ratio, below.std_error),
                    1 - sizing.hit_ratio, erlang_b(sizing.replicas - 1, rate * ready.mean))
    assert verdict.text == "ok"


def test_latency_share_matches_the_model() -> None:
    rate, ready, bound = 0.5, ReadyTime(8, 0.5), 10.0
    sizing = size_pool([rate], ready, LatencyTarget(bound))
    share, error = run(sizing.replicas, rate, ready).latency_exceeds(bound)
    expected = erlang_b(sizing.replicas, rate * ready.mean) * ready.exceeds(bound)
    assert abs(share - expected) <= TOLERANCE_SE * error + 1e-4
    assert share <= 0.01


def test_seeded_runs_repeat_exactly_and_seeds_differ() -> None:
    ready = ReadyTime(8, 1.0)
    first, again, other = run(6, 0.5, ready, seed=1), run(6, 0.5, ready, seed=1), run(6, 0.5, ready, seed=2)
    assert first == again
    assert first.hits != other.hits


def test_bursty_claims_break_the_poisson_assumption() -> None:
    # Same mean rate, but claims come four at a time: the pool empties in one go and
    # the model (which assumes Poisson claims) overstates the hit ratio.
    rate, ready = 0.5, ReadyTime(15, 1.0)
    sizing = size_pool([rate], ready, HitRatioTarget(0.99))
    arrivals = list(bursty_arrivals(rate, 4, CLAIMS, random.Random(5)))
    assert len(arrivals) / arrivals[-1] == pytest.approx(rate, rel=0.05)
    result = simulate(sizing.replicas, ready, arrivals, seed=5)
    assert result.hit_ratio < 0.97 < sizing.hit_ratio


@pytest.mark.parametrize(
    ("at_n", "below", "model_n", "model_below", "ok", "fragment"),
    [
        # Simulation and model agree, both sides clear: ok.
        ((0.008, 0.001), (0.013, 0.001), 0.0079, 0.0131, True, "ok"),
        # The model's N only just meets the target (margin 0.0001 < 2 se): unresolved, but agreeing.
        ((0.0105, 0.001), (0.015, 0.001), 0.0099, 0.0149, True, "N misses the target by 0.0005 (unresolved"),
        # The model claims a clear margin the simulation contradicts: the model is wrong.
        ((0.02, 0.001), (0.03, 0.001), 0.005, 0.03, False, "N misses the target by 0.01 (FAIL: model margin 0.005"),
        # N-1 meets the target in simulation although the model says it misses clearly.
        ((0.005, 0.001), (0.004, 0.0001), 0.005, 0.02, False, "N-1 meets the target by 0.006 (FAIL"),
    ],
)
def test_judge(at_n, below, model_n: float, model_below: float, ok: bool, fragment: str) -> None:
    verdict = judge(0.01, at_n, below, model_n, model_below)
    assert verdict.ok == ok
    assert fragment in verdict.text


def test_too_few_claims_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        simulate(3, ReadyTime(8), [1.0, 2.0, 3.0])
