"""Tenant component: a restricted namespace with quota, limits, default-deny and claim RBAC."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import dependencies, kubernetes_resource, metadata
from .manifests.tenant import CLAIMER_ROLE, build_tenant
from .specs.tenant import TenantSpec


@dataclass(frozen=True)
class TenantArgs:
    spec: TenantSpec
    """The tenant (`tenants[]` in docs/config.md): its namespace is `spec.name`, labelled for
    Pod Security `restricted` (enforce, audit, warn), with a ResourceQuota, a LimitRange, a
    default-deny NetworkPolicy and a claimer Role bound to `spec.gatewayServiceAccounts`.
    There is no insecure switch: a workload that needs more belongs in another namespace."""


class Tenant(pulumi.ComponentResource):
    """One team's namespace for sandboxes and VMs, and the least-privilege Role a gateway
    claims sandboxes with (claims only; no pod, sandbox or template writes)."""

    namespace: pulumi.Output[str]
    """The namespace's name, once it exists: put templates, pools and VMs here."""
    claimer_role: pulumi.Output[str]
    """The Role a gateway needs to claim sandboxes in this namespace; bind more service
    accounts to it with your own RoleBinding."""

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Tenant", name, None, opts)
        manifests = build_tenant(args.spec)
        namespace_manifest = next(m for m in manifests if m["kind"] == "Namespace")
        after = dependencies(opts)
        self.namespace_resource = kubernetes_resource(namespace_manifest, pulumi.ResourceOptions(parent=self, depends_on=after))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[*after, self.namespace_resource])
        others = [m for m in manifests if m is not namespace_manifest]
        self.resources = [kubernetes_resource(m, inside) for m in others]
        self.namespace = metadata(self.namespace_resource)
        role = next(r for m, r in zip(others, self.resources, strict=True)
                    if m["kind"] == "Role" and m["metadata"]["name"] == CLAIMER_ROLE)
        self.claimer_role = metadata(role)
        self.register_outputs({"namespace": self.namespace, "claimerRole": self.claimer_role})
