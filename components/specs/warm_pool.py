"""Warm pools: pre-started sandboxes of one template, claimed in ~0.1 s."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ..sizing.units import parse_duration
from .base import DnsLabel, Replicas, Spec
from .sizing import SloSpec

# How long `pulumi up` may wait for a pool (`waitForReady`): Helm's `--wait` default, half the
# Kubernetes provider's 10 minutes, and room for a cold node to pull an image of a few GB.
DEFAULT_READY_TIMEOUT = "5m"
READY_TIMEOUT_BOUNDS = (10.0, 3600.0)


def _ready_timeout(value: str | int | float) -> str:
    low, high = READY_TIMEOUT_BOUNDS
    if not low <= parse_duration(str(value)) <= high:
        raise ValueError("must be between 10s and 1h")
    return str(value)


ReadyTimeout = Annotated[str | int | float, AfterValidator(_ready_timeout)]


class WarmPoolSpec(Spec):
    name: DnsLabel
    template: DnsLabel
    """Name of a template of this stack; the pool lives in that template's tenant namespace."""
    fixed_replicas: Replicas | None = Field(default=None, alias="replicas")
    """A fixed pool size. Or leave it out and give `slo`."""
    slo: SloSpec | None = None
    """Claim rate, ready time and target: the sizing model computes the replicas."""
    update_strategy: Literal["OnReplenish", "Recreate"] = "OnReplenish"
    """OnReplenish keeps running sandboxes on template changes (no session is cut);
    Recreate replaces them at once."""
    wait_for_ready: bool = False
    """Block `pulumi up` until all replicas report ready, at most `readyTimeout`; a pod stuck in a
    failing state (CreateContainerConfigError, ImagePullBackOff, CrashLoopBackOff, ...) fails it
    at once, naming the pool, the template and the pod's reason (components/readiness.py)."""
    ready_timeout: ReadyTimeout = DEFAULT_READY_TIMEOUT
    """How long `pulumi up` waits for a `waitForReady` pool, 10s..1h (`90s`, `10m`)."""
    allow_gpu: bool = False
    """Explicit opt-in for pools whose template requests GPUs (idle GPUs are expensive)."""

    @model_validator(mode="after")
    def _replicas_or_slo(self) -> WarmPoolSpec:
        if self.fixed_replicas is None and self.slo is None:
            raise ValueError(
                "set exactly one of replicas (a fixed pool size) or slo (claim rate, ready time and "
                "target, from which the replicas are computed)"
            )
        if self.fixed_replicas is not None and self.slo is not None:
            raise ValueError(
                f"sets both replicas ({self.fixed_replicas}) and slo: give one. Where a config layer sizes "
                "the pool by slo and a later one sets replicas, the later one also needs `slo: null` "
                "(or override the slo's claim rates instead)"
            )
        return self

    @property
    def replicas(self) -> int:
        """The pool size Pulumi sets: fixed, or computed from the SLO (within the autoscaling bounds)."""
        if self.slo is None:
            return self.fixed_replicas or 0
        plan = self.slo.autoscaling_plan
        if plan is None:
            return self.slo.sizing.replicas
        return min(max(self.slo.sizing.replicas, plan.min_replicas), plan.max_replicas)

    @property
    def ready_timeout_seconds(self) -> float:
        return parse_duration(str(self.ready_timeout))

    @property
    def waits_for_ready(self) -> bool:
        """Whether `pulumi up` waits for this pool (given `cluster.waitForWorkloads`). An
        autoscaled pool's size is the autoscaler's to change: waiting for a fixed count would race it."""
        return self.wait_for_ready and self.replicas > 0 and not self.autoscaled

    @property
    def max_replicas(self) -> int:
        """The most replicas the pool can run (an autoscaler's ceiling)."""
        plan = self.slo.autoscaling_plan if self.slo else None
        return plan.max_replicas if plan else self.replicas

    @property
    def autoscaled(self) -> bool:
        return self.slo is not None and self.slo.autoscaling is not None

    @property
    def autoscaler_engine(self) -> str | None:
        """`hpa` or `keda` for an autoscaled pool, else None."""
        return self.slo.autoscaling.engine if self.slo is not None and self.slo.autoscaling is not None else None
