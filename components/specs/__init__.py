"""Typed stack config: pydantic models with the secure defaults, in one place.

The names below load on first use, so that importing one light module of the package
(`components.specs.stack_files`) does not build every model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The models the components' args take (`spec=`), by keyword in snake_case: the typed way to
# write what docs/config.md shows in camelCase.
_EXPORTS = {
    "StackSpec": "stack", "load_stack": "loader", "spec_from_config": "loader",
    "AgentSandboxSpec": "agent_sandbox", "KubeVirtSpec": "kubevirt", "TenantSpec": "tenant",
    "ServiceAccountRef": "tenant", "TemplateSpec": "template", "Resources": "base", "WarmPoolSpec": "warm_pool",
    "RuntimeSpec": "runtime", "VmConfig": "runtime", "WarmSpec": "runtime", "SecretValue": "secrets",
    "MonitoringSpec": "monitoring", "RuntimeCatalogueSpec": "runtime", "PodRuntimeEntry": "runtime",
}
__all__ = [
    "AgentSandboxSpec", "KubeVirtSpec", "MonitoringSpec", "PodRuntimeEntry", "Resources", "RuntimeCatalogueSpec",
    "RuntimeSpec", "SecretValue", "ServiceAccountRef", "StackSpec", "TemplateSpec", "TenantSpec", "VmConfig",
    "WarmPoolSpec", "WarmSpec", "load_stack", "spec_from_config",
]

if TYPE_CHECKING:
    from .agent_sandbox import AgentSandboxSpec
    from .base import Resources
    from .kubevirt import KubeVirtSpec
    from .loader import load_stack, spec_from_config
    from .monitoring import MonitoringSpec
    from .runtime import PodRuntimeEntry, RuntimeCatalogueSpec, RuntimeSpec, VmConfig, WarmSpec
    from .secrets import SecretValue
    from .stack import StackSpec
    from .template import TemplateSpec
    from .tenant import ServiceAccountRef, TenantSpec
    from .warm_pool import WarmPoolSpec


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components.specs' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
