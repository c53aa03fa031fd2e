"""Pulumi components for AI-agent sandboxes on Kubernetes: the public API.

Each component takes `(name, args, opts)`, shaped like pulumi-eks and awsx components:
`args.spec` is the component's own settings (a model of `components.specs` or a mapping
with the keys of docs/config.md, validated either way), other components are passed as
components (a template takes the install and the tenant), any other dependency goes
through `opts.depends_on`, and every attribute is a `pulumi.Output`. Reference:
docs/components.md; programs using them: examples/.

    from components import AgentSandbox, AgentSandboxArgs, Tenant, TenantArgs, ...

Data flows one way inside: config models (`specs/`) -> manifests (`manifests/`, pure
functions; `manifests/graph.py` is a stack's graph) -> these components. Importing
`components.specs` alone stays light: the components (and Pulumi's Kubernetes SDK)
load on first use of a name below.

The component modules do not use `from __future__ import annotations`: Pulumi's component
provider (the package for YAML and other languages) reads their annotations as types.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AdmissionPolicies": "admission", "AdmissionPoliciesArgs": "admission",
    "AgentSandbox": "agent_sandbox", "AgentSandboxArgs": "agent_sandbox",
    "KubeVirt": "kubevirt", "KubeVirtArgs": "kubevirt",
    "Tenant": "tenant", "TenantArgs": "tenant",
    "SandboxTemplate": "sandbox_template", "SandboxTemplateArgs": "sandbox_template",
    "WarmPool": "warm_pool", "WarmPoolArgs": "warm_pool",
    "VmEnvironment": "vm_environment", "VmEnvironmentArgs": "vm_environment",
    "RuntimeCatalogue": "catalogue", "RuntimeCatalogueArgs": "catalogue",
    "Monitoring": "monitoring", "MonitoringArgs": "monitoring",
    "RequiredCrds": "prerequisites", "RequiredCrdsArgs": "prerequisites",
    "UpstreamLoader": "upstream",
    "deploy": "stack",
}
__all__ = [
    "AdmissionPolicies", "AdmissionPoliciesArgs",
    "AgentSandbox", "AgentSandboxArgs", "KubeVirt", "KubeVirtArgs", "Monitoring", "MonitoringArgs", "RequiredCrds", "RequiredCrdsArgs",
    "RuntimeCatalogue", "RuntimeCatalogueArgs", "SandboxTemplate", "SandboxTemplateArgs", "Tenant", "TenantArgs",
    "UpstreamLoader", "VmEnvironment", "VmEnvironmentArgs", "WarmPool", "WarmPoolArgs", "deploy",
]

if TYPE_CHECKING:
    from .admission import AdmissionPolicies, AdmissionPoliciesArgs
    from .agent_sandbox import AgentSandbox, AgentSandboxArgs
    from .catalogue import RuntimeCatalogue, RuntimeCatalogueArgs
    from .kubevirt import KubeVirt, KubeVirtArgs
    from .monitoring import Monitoring, MonitoringArgs
    from .prerequisites import RequiredCrds, RequiredCrdsArgs
    from .sandbox_template import SandboxTemplate, SandboxTemplateArgs
    from .stack import deploy
    from .tenant import Tenant, TenantArgs
    from .upstream import UpstreamLoader
    from .vm_environment import VmEnvironment, VmEnvironmentArgs
    from .warm_pool import WarmPool, WarmPoolArgs


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
