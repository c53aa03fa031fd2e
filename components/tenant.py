"""Tenant component: a restricted namespace with quota, limits, default-deny and claim RBAC."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.tenant import build_tenant
from .specs.tenant import TenantSpec


class Tenant(pulumi.ComponentResource):
    def __init__(self, spec: TenantSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Tenant", spec.name, None, opts)
        manifests = build_tenant(spec)
        namespace_manifest = next(m for m in manifests if m["kind"] == "Namespace")
        self.namespace = kubernetes_resource(namespace_manifest, pulumi.ResourceOptions(parent=self))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        self.resources = [kubernetes_resource(m, inside) for m in manifests if m is not namespace_manifest]
        self.register_outputs({"namespace": spec.name})
