"""Tenant component: a restricted namespace with quota, limits, default-deny and claim RBAC."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Any

import pulumi

from .k8s import as_spec, dependencies, metadata, place
from .manifests.tenant import CLAIMER_ROLE, build_tenant
from .specs.tenant import TenantSpec


@dataclass
class TenantArgs:
    spec: TenantSpec | dict[str, Any]
    """The tenant (`tenants[]` in docs/config.md), as a `TenantSpec` or a mapping of its keys:
    its namespace is `name`, labelled for Pod Security `restricted` (enforce, audit, warn),
    with a ResourceQuota, a LimitRange, a default-deny NetworkPolicy and a claimer Role bound
    to `gatewayServiceAccounts`. There is no insecure switch: a workload that needs more
    belongs in another namespace."""


class Tenant(pulumi.ComponentResource):
    """One team's namespace for sandboxes and VMs, and the least-privilege Role a gateway
    claims sandboxes with (claims only; no pod, sandbox or template writes). Pass it to the
    templates and VM environments that live in it."""

    namespace: pulumi.Output[str]
    """The namespace's name, once it exists."""
    claimer_role: pulumi.Output[str]
    """The Role a gateway needs to claim sandboxes in this namespace; bind more service
    accounts to it with your own RoleBinding."""

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Tenant", name, None, opts)
        self._spec = as_spec(TenantSpec, args.spec, f"Tenant {name!r}")
        manifests = build_tenant(self._spec)
        created = dict(zip(((m["kind"], m["metadata"]["name"]) for m in manifests),
                           place(self, manifests, dependencies(opts)), strict=True))
        self.namespace = metadata(created["Namespace", self._spec.name])
        self.claimer_role = metadata(created["Role", CLAIMER_ROLE])
        self.register_outputs({"namespace": self.namespace, "claimerRole": self.claimer_role})
