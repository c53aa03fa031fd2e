"""Warm pools: pre-started sandboxes of one template, claimed in ~0.1 s."""

from __future__ import annotations

from typing import Literal

from .base import DnsLabel, Replicas, Spec


class WarmPoolSpec(Spec):
    name: DnsLabel
    template: DnsLabel
    """Name of a template of this stack; the pool lives in that template's tenant namespace."""
    replicas: Replicas
    update_strategy: Literal["OnReplenish", "Recreate"] = "OnReplenish"
    """OnReplenish keeps running sandboxes on template changes (no session is cut);
    Recreate replaces them at once."""
    wait_for_ready: bool = False
    """Block `pulumi up` until all replicas report ready (pulumi.com/waitFor)."""
    allow_gpu: bool = False
    """Explicit opt-in for pools whose template requests GPUs (idle GPUs are expensive)."""
