"""Autoscaler settings from the sizing model.

An autoscaler knows the claim rate r (from Prometheus) and turns it into a
replica count. Both rules below are built so that, at every rate between the
low and the high rate, they ask for at least the replicas the model needs
(`size_pool` at that rate); the bounds are the model's answers at the two ends.

- A linear rule, replicas = ceil(r / per_replica_rate), is all an HPA on an
  external metric can express. The model's need grows more slowly than the rate
  (bigger pools pool their risk), so the slope has to come from the low end and
  the rule over-provisions towards the high end, where maxReplicas caps it.
- A square-root staffing rule, replicas = ceil(A + beta * sqrt(A)) with
  A = r x ready time, follows the model closely; KEDA's Prometheus trigger can
  compute it in the query.

The HPA controller leaves the replica count alone while metric/target is within
its tolerance (10 % by default), so both rules are scaled up by that much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import MAX_REPLICAS, ReadyTime, SizingError, Target, max_offered_load, size_pool

HPA_TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance default


@dataclass(frozen=True)
class AutoscalingPlan:
    low_rate: float
    high_rate: float
    """Claims per second at the two ends of the range the autoscaler covers."""
    min_replicas: int
    max_replicas: int
    per_replica_rate: float
    """Linear rule: target claims per second per replica (tolerance already applied)."""
    beta: float
    """Square-root rule: replicas = A + beta * sqrt(A)."""
    ready_mean: float
    threshold: float = 1 / (1 + HPA_TOLERANCE)
    """What the square-root rule's value is divided by (AverageValue target)."""

    def linear_replicas(self, rate: float) -> int:
        return self._clamp(math.ceil(rate / self.per_replica_rate - 1e-9))

    def sqrt_replicas(self, rate: float) -> int:
        load = rate * self.ready_mean
        return self._clamp(math.ceil((load + self.beta * math.sqrt(load)) / self.threshold - 1e-9))

    def _clamp(self, replicas: int) -> int:
        return min(max(replicas, self.min_replicas), self.max_replicas)


def plan_autoscaling(
    low_rate: float, high_rate: float, ready: ReadyTime, target: Target, max_replicas: int = MAX_REPLICAS
) -> AutoscalingPlan:
    if not 0 < low_rate < high_rate:
        raise SizingError(f"autoscaling needs 0 < low rate < high rate, got {low_rate:g}/s and {high_rate:g}/s")
    # An HPA cannot go below one replica (without an alpha feature gate).
    low = max(size_pool([low_rate], ready, target, max_replicas).replicas, 1)
    high = max(size_pool([high_rate], ready, target, max_replicas).replicas, low)
    allowed_miss = target.max_miss_ratio(ready)
    low_load = low_rate * ready.mean

    # Where the model's need steps from k to k+1 replicas (k = low .. high-1), both
    # rules must already ask for k+1: that is where each rule is tightest.
    per_replica_load = low_load / low
    beta = 0.0  # below the first step minReplicas covers the need
    load = None
    for k in range(low, high):
        load = max_offered_load(k, allowed_miss, load)
        per_replica_load = min(per_replica_load, load / (k + 1))
        beta = max(beta, (k - load) / math.sqrt(load))
    return AutoscalingPlan(
        low_rate=low_rate,
        high_rate=high_rate,
        min_replicas=low,
        max_replicas=high,
        per_replica_rate=per_replica_load / ready.mean / (1 + HPA_TOLERANCE),
        beta=beta,
        ready_mean=ready.mean,
    )
