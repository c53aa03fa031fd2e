"""Tenant namespaces: Pod Security restricted, quota, limits, and who may claim sandboxes."""

from __future__ import annotations

from pydantic import Field

from .base import DnsLabel, Namespace, Quantity, Spec


class ServiceAccountRef(Spec):
    name: DnsLabel
    namespace: DnsLabel | None = None
    """Namespace of the gateway's service account; default: the tenant namespace."""


class QuotaSpec(Spec):
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"
    pods: int = Field(default=50, ge=1, le=10000)


class ContainerDefaultsSpec(Spec):
    """LimitRange defaults for containers that do not set their own (sandboxes always do)."""

    default_request_cpu: Quantity = "100m"
    default_request_memory: Quantity = "128Mi"
    default_limit_cpu: Quantity = "1"
    default_limit_memory: Quantity = "1Gi"
    max_cpu: Quantity = "8"
    max_memory: Quantity = "16Gi"


class TenantSpec(Spec):
    name: Namespace
    """Also the namespace name."""
    gateway_service_accounts: list[ServiceAccountRef] = []
    """Service accounts that may claim sandboxes in this tenant (least privilege)."""
    quota: QuotaSpec = QuotaSpec()
    container_defaults: ContainerDefaultsSpec = ContainerDefaultsSpec()
