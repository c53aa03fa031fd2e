"""A warm pool's service-level objective: replicas computed instead of guessed.

The sizing runs while the config is validated (every render, preview and up),
so an unreachable target fails like any other bad value, with its key path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from ..sizing.autoscaling import AutoscalingPlan, plan_autoscaling
from ..sizing.model import (
    HOURS_PER_DAY,
    MAX_REPLICAS,
    WARM_CLAIM_SECONDS,
    HitRatioTarget,
    LatencyTarget,
    ReadyTime,
    Sizing,
    SizingError,
    Target,
    size_pool,
)
from ..sizing.units import parse_duration, parse_rate
from .base import DnsSubdomain, Spec


def _rate(value: str | int | float) -> str:
    if parse_rate(str(value)) <= 0:
        raise ValueError("must be greater than zero")
    return str(value)


def _hourly_rate(value: str | int | float) -> str:
    parse_rate(str(value))  # zero is fine for a quiet hour
    return str(value)


def _duration(value: str | int | float) -> str:
    if parse_duration(str(value)) <= 0:
        raise ValueError("must be greater than zero")
    return str(value)


ClaimRate = Annotated[str | int | float, AfterValidator(_rate)]
HourlyClaimRate = Annotated[str | int | float, AfterValidator(_hourly_rate)]
Duration = Annotated[str | int | float, AfterValidator(_duration)]

DEFAULT_METRIC = "agent_sandbox_claim_creation_per_second"


class AutoscalingSpec(Spec):
    """Scale the pool with the claim rate; bounds are the model's replicas at the two rates."""

    engine: Literal["hpa", "keda"]
    """`hpa`: a HorizontalPodAutoscaler on an external metric (prometheus-adapter or a cloud
    adapter); `keda`: a KEDA ScaledObject with a Prometheus trigger (KEDA must be installed)."""
    min_claim_rate: ClaimRate | None = None
    """Lowest claim rate to plan for (minReplicas); default: the quietest hour of the profile."""
    max_claim_rate: ClaimRate | None = None
    """Highest claim rate to plan for (maxReplicas); default: the busiest hour of the profile."""
    metric_name: str = Field(default=DEFAULT_METRIC, pattern=r"^[A-Za-z0-9_:|.-]+$")
    """hpa: the external metric carrying the pool's claims per second, selected by the
    labels namespace and warmpool_name (a rate of agent_sandbox_claim_creation_total)."""
    prometheus_address: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """keda: the Prometheus server KEDA queries (required for keda)."""
    authentication_ref: DnsSubdomain | None = None
    """keda: name of a TriggerAuthentication in the pool's namespace, if Prometheus needs credentials."""

    @model_validator(mode="after")
    def _engine_settings(self) -> AutoscalingSpec:
        if self.engine == "keda" and not self.prometheus_address:
            raise ValueError("engine keda needs prometheusAddress (the Prometheus server KEDA queries)")
        if self.engine == "hpa" and (self.prometheus_address or self.authentication_ref):
            raise ValueError("prometheusAddress and authenticationRef apply to engine keda only; "
                             "an hpa reads metricName from the cluster's external metrics API")
        return self


class SloSpec(Spec):
    """What the pool must achieve; the sizing model turns it into replicas (docs/sizing.md)."""

    claim_rate: ClaimRate | None = None
    """Claims per unit of time, e.g. 30/min."""
    hourly_claim_rates: Annotated[list[HourlyClaimRate], Field(min_length=HOURS_PER_DAY, max_length=HOURS_PER_DAY)] | None = None
    """Instead of claimRate: 24 rates, one per hour of the day; the target holds over the day's claims."""
    ready_time: Duration
    """Mean time from creating a sandbox to it being ready (pods ~4-15s, VMs 30-120s)."""
    ready_time_cv: float = Field(default=0.5, ge=0, le=10)
    """Spread of the ready time (std/mean, lognormal); only latency targets depend on it."""
    hit_ratio: float | None = Field(default=None, gt=0, lt=1)
    """Share of claims served warm from the pool, e.g. 0.99."""
    p99_claim_latency: Duration | None = None
    """Instead of hitRatio: 99 % of claims are ready within this long, e.g. 2s."""
    autoscaling: AutoscalingSpec | None = None

    _sizing: Sizing = PrivateAttr()
    _plan: AutoscalingPlan | None = PrivateAttr(default=None)

    @property
    def rates(self) -> list[float]:
        """Claims per second: one steady rate or 24 hourly rates."""
        if self.claim_rate is not None:
            return [parse_rate(str(self.claim_rate))]
        return [parse_rate(str(r)) for r in self.hourly_claim_rates or []]

    @property
    def ready(self) -> ReadyTime:
        return ReadyTime(parse_duration(str(self.ready_time)), self.ready_time_cv)

    @property
    def target(self) -> Target:
        if self.hit_ratio is not None:
            return HitRatioTarget(self.hit_ratio)
        return LatencyTarget(parse_duration(str(self.p99_claim_latency)), 0.99)

    @property
    def sizing(self) -> Sizing:
        return self._sizing

    @property
    def autoscaling_plan(self) -> AutoscalingPlan | None:
        return self._plan

    @field_validator("p99_claim_latency")
    @classmethod
    def _slower_than_a_warm_claim(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(str(value)) <= WARM_CLAIM_SECONDS:
            raise ValueError(f"must exceed the ~{WARM_CLAIM_SECONDS:g}s a warm claim takes; no pool can do better")
        return value

    @model_validator(mode="after")
    def _size(self) -> SloSpec:
        if (self.claim_rate is None) == (self.hourly_claim_rates is None):
            raise ValueError("set exactly one of claimRate (a steady rate such as 30/min) or hourlyClaimRates (24 rates)")
        if (self.hit_ratio is None) == (self.p99_claim_latency is None):
            raise ValueError("set exactly one target: hitRatio (such as 0.99) or p99ClaimLatency (such as 2s)")
        try:
            self._sizing = size_pool(self.rates, self.ready, self.target, MAX_REPLICAS)
            if self.autoscaling is not None:
                low, high = self._autoscaling_range(self.autoscaling)
                self._plan = plan_autoscaling(low, high, self.ready, self.target, MAX_REPLICAS)
        except SizingError as error:
            raise ValueError(str(error)) from None
        return self

    def _autoscaling_range(self, autoscaling: AutoscalingSpec) -> tuple[float, float]:
        busy = [r for r in self.rates if r > 0]
        low = parse_rate(str(autoscaling.min_claim_rate)) if autoscaling.min_claim_rate is not None else None
        high = parse_rate(str(autoscaling.max_claim_rate)) if autoscaling.max_claim_rate is not None else None
        if (low is None or high is None) and self.hourly_claim_rates is None:
            raise ValueError("autoscaling needs minClaimRate and maxClaimRate (or give hourlyClaimRates to take them from)")
        low = min(busy) if low is None else low
        high = max(busy) if high is None else high
        if not low < high:
            raise ValueError(f"autoscaling.minClaimRate ({low * 60:g}/min) must be below maxClaimRate ({high * 60:g}/min)")
        return low, high

    def annotations(self) -> dict[str, Any]:
        """The inputs as configured (for the pool's sizing-inputs annotation)."""
        exclude = {"autoscaling"} if self.hit_ratio is None else {"autoscaling", "ready_time_cv"}
        return self.model_dump(by_alias=True, exclude_none=True, exclude=exclude)
