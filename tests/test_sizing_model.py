"""The sizing model: Erlang B, the smallest pool meeting a target, costs, autoscaling rules."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from components.sizing.autoscaling import HPA_TOLERANCE, plan_autoscaling
from components.sizing.model import (
    HitRatioTarget,
    LatencyTarget,
    ReadyTime,
    SizingError,
    erlang_b,
    evaluate,
    max_offered_load,
    size_pool,
)
from components.sizing.units import parse_duration, parse_rate


def erlang_b_closed_form(servers: int, load: Fraction) -> Fraction:
    """B = (A^N / N!) / sum_k A^k / k!, exactly: independent of the recursion under test."""
    terms = [load**k / math.factorial(k) for k in range(servers + 1)]
    return terms[-1] / sum(terms)


@pytest.mark.parametrize(("servers", "load"), [(1, "0.5"), (3, "2"), (10, "4"), (25, "17.5"), (40, "40")])
def test_erlang_b_matches_the_closed_form(servers: int, load: str) -> None:
    exact = erlang_b_closed_form(servers, Fraction(load))
    assert erlang_b(servers, float(load)) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_b_edge_cases() -> None:
    assert erlang_b(0, 3.0) == 1.0  # no pool: every claim is cold
    assert erlang_b(5, 0.0) == 0.0  # no load: nothing is ever missing


GRID = [(rate, ready, target) for rate in (1 / 60, 0.5, 2.0, 5.0) for ready in (4.0, 30.0, 120.0)
        for target in (0.9, 0.99, 0.999)]


@pytest.mark.parametrize(("rate", "ready", "target"), GRID)
def test_size_is_the_smallest_pool_meeting_the_target(rate: float, ready: float, target: float) -> None:
    sizing = size_pool([rate], ReadyTime(ready), HitRatioTarget(target))
    load = Fraction(rate) * Fraction(ready)
    assert 1 - erlang_b_closed_form(sizing.replicas, load) >= target
    assert 1 - erlang_b_closed_form(sizing.replicas - 1, load) < target
    assert sizing.hit_ratio == pytest.approx(1 - float(erlang_b_closed_form(sizing.replicas, load)))


def test_worked_example_30_per_minute_8_seconds() -> None:
    # A = 0.5/s x 8 s = 4: B(9, 4) = 1.33 % misses, B(10, 4) = 0.53 %.
    sizing = size_pool([parse_rate("30/min")], ReadyTime(parse_duration("8s")), HitRatioTarget(0.99))
    assert sizing.replicas == 10
    assert sizing.offered_load == pytest.approx(4.0)
    # Idle = replicas - sandboxes replenishing = N - A (1 - B); a day has 24 hours.
    assert sizing.idle_replicas == pytest.approx(10 - 4 * sizing.hit_ratio)
    assert sizing.idle_pod_hours_per_day == pytest.approx(24 * sizing.idle_replicas)
    assert sizing.naive_replicas == 4
    assert sizing.naive_hit_ratio < 0.7  # the rule of thumb misses almost a third of the claims


def test_summary_has_exactly_the_headline_keys() -> None:
    summary = size_pool([0.5], ReadyTime(8), HitRatioTarget(0.99)).summary()
    assert list(summary) == ["replicas", "hit_ratio", "idle_replicas", "idle_pod_hours_per_day"]


def test_hit_ratio_depends_on_the_ready_time_only_through_its_mean() -> None:
    sizes = {size_pool([0.5], ReadyTime(8, cv), HitRatioTarget(0.99)) for cv in (0, 0.5, 3)}
    assert len(sizes) == 1


def test_more_demand_or_slower_starts_need_more_replicas() -> None:
    target = HitRatioTarget(0.99)
    base = size_pool([0.5], ReadyTime(8), target).replicas
    assert size_pool([1.0], ReadyTime(8), target).replicas > base
    assert size_pool([0.5], ReadyTime(60), target).replicas > base
    assert size_pool([0.5], ReadyTime(8), HitRatioTarget(0.999)).replicas > base


def test_a_flat_profile_sizes_like_a_steady_rate() -> None:
    steady = size_pool([0.5], ReadyTime(8), HitRatioTarget(0.99))
    flat = size_pool([0.5] * 24, ReadyTime(8), HitRatioTarget(0.99))
    assert (flat.replicas, flat.hit_ratio, flat.idle_replicas) == pytest.approx(
        (steady.replicas, steady.hit_ratio, steady.idle_replicas)
    )
    assert flat.hourly_replicas == (steady.replicas,) * 24


def test_profile_target_holds_over_the_days_claims() -> None:
    rates = [0.05] * 12 + [1.0] * 12  # quiet nights, busy days
    sizing = size_pool(rates, ReadyTime(15), HitRatioTarget(0.99))
    hit, idle = evaluate(sizing.replicas, rates, 15)
    assert hit >= 0.99 > evaluate(sizing.replicas - 1, rates, 15)[0]
    # Claim-weighted: the busy hours dominate, so the pool is about the busy hours' size.
    assert sizing.replicas == max(sizing.hourly_replicas)
    # Time-weighted idle: half the day the pool sits almost entirely idle.
    quiet = sizing.replicas - 0.05 * 15 * (1 - erlang_b(sizing.replicas, 0.75))
    busy = sizing.replicas - 1.0 * 15 * (1 - erlang_b(sizing.replicas, 15))
    assert idle == pytest.approx((quiet + busy) / 2)
    assert sizing.naive_replicas == 15  # ceil(peak rate x ready)


def test_latency_target_counts_only_misses_slower_than_the_bound() -> None:
    ready = ReadyTime(8, 0.5)
    # A bound far below the ready time: every miss is too slow, as for a 0.99 hit ratio.
    assert size_pool([0.5], ready, LatencyTarget(1.0)).replicas == size_pool([0.5], ready, HitRatioTarget(0.99)).replicas
    # A bound above most cold starts tolerates more misses: a smaller pool will do.
    assert size_pool([0.5], ready, LatencyTarget(12.0)).replicas < size_pool([0.5], ready, LatencyTarget(1.0)).replicas
    # Cold starts that always beat the bound need no pool at all.
    assert size_pool([0.5], ReadyTime(8, 0), LatencyTarget(9.0)).replicas == 0


def test_lognormal_tail() -> None:
    ready = ReadyTime(10, 0.5)
    mu, sigma = ready.log_params
    assert math.exp(mu + sigma**2 / 2) == pytest.approx(10)  # the mean is kept
    assert 0.5 > ready.exceeds(10) > 0.3  # right-skewed: the median is below the mean
    assert ready.exceeds(1000) < 1e-9
    assert ReadyTime(10, 0).exceeds(9.99) == 1 and ReadyTime(10, 0).exceeds(10) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: size_pool([50.0], ReadyTime(120), HitRatioTarget(0.999)), "needs more than 1000 replicas"),
        (lambda: size_pool([0.5, 0.5], ReadyTime(8), HitRatioTarget(0.99)), "one claim rate or 24 hourly rates"),
        (lambda: size_pool([0.0], ReadyTime(8), HitRatioTarget(0.99)), "not all zero"),
        (lambda: HitRatioTarget(1.0), "between 0 and 1"),
        (lambda: LatencyTarget(0.05), "must exceed"),
        (lambda: ReadyTime(0), "positive"),
    ],
)
def test_impossible_inputs_raise_a_sizing_error(call, message: str) -> None:
    with pytest.raises(SizingError, match=message):
        call()


@pytest.mark.parametrize("replicas", [1, 2, 7, 30, 200])
def test_max_offered_load_is_the_edge_of_the_target(replicas: int) -> None:
    load = max_offered_load(replicas, 0.01)
    assert erlang_b(replicas, load) <= 0.01 < erlang_b(replicas, load * 1.0001)


@pytest.mark.parametrize(
    ("low", "high", "ready", "target"),
    [(5 / 60, 2.0, 8.0, 0.99), (1 / 60, 0.5, 90.0, 0.999), (0.2, 5.0, 15.0, 0.9), (10 / 60, 3.0, 8.0, 0.99)],
)
def test_autoscaling_rules_never_ask_for_less_than_the_model(low: float, high: float, ready: float, target: float) -> None:
    plan = plan_autoscaling(low, high, ReadyTime(ready), HitRatioTarget(target))
    assert plan.min_replicas == size_pool([low], ReadyTime(ready), HitRatioTarget(target)).replicas
    assert plan.max_replicas == size_pool([high], ReadyTime(ready), HitRatioTarget(target)).replicas
    sqrt_extra = linear_extra = 0
    for step in range(1001):
        rate = low + (high - low) * step / 1000
        need = size_pool([rate], ReadyTime(ready), HitRatioTarget(target)).replicas
        assert plan.linear_replicas(rate) >= need, rate
        assert plan.sqrt_replicas(rate) >= need, rate
        # The HPA leaves the count alone within its tolerance band: the lowest count it settles at.
        settles = math.ceil(rate / plan.per_replica_rate / (1 + HPA_TOLERANCE) - 1e-9)
        assert min(max(settles, plan.min_replicas), plan.max_replicas) >= need, rate
        load = rate * ready
        settles = math.ceil((load + plan.beta * math.sqrt(load)) / plan.threshold / (1 + HPA_TOLERANCE) - 1e-9)
        assert min(max(settles, plan.min_replicas), plan.max_replicas) >= need, rate
        sqrt_extra += plan.sqrt_replicas(rate) - need
        linear_extra += plan.linear_replicas(rate) - need
    # The square-root rule follows the model more closely than a straight line can.
    assert sqrt_extra < linear_extra


def test_autoscaling_needs_a_range() -> None:
    with pytest.raises(SizingError, match="low rate < high rate"):
        plan_autoscaling(1.0, 0.5, ReadyTime(8), HitRatioTarget(0.99))


@pytest.mark.parametrize(
    ("text", "per_second"), [("30/min", 0.5), ("0.5/s", 0.5), ("1800/h", 0.5), ("2 / minute", 2 / 60)]
)
def test_rates(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(("text", "seconds"), [("8s", 8), ("2m", 120), ("500ms", 0.5), ("1.5min", 90), ("1h", 3600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "30/day", "fast", "-1/min"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError, match="rate such as 30/min"):
        parse_rate(text)
