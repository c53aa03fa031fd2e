"""Per-stack security settings that the builders and the policy rules share."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Spec


class PolicySpec(Spec):
    enforcement: Literal["advisory", "mandatory"] = "mandatory"
    max_warm_pool_replicas: int = Field(default=20, ge=0, le=1000)
    require_runtime_class: bool = False
    """Every template must name a sandboxing runtime class (gVisor, Kata)."""
    allowed_registries: list[str] = []
    """Image registries (host or host/path prefix) trusted without a digest pin."""
