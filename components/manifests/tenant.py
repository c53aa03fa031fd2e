"""Tenant namespaces: restricted Pod Security, quota, limits, default-deny network,
and least-privilege claim access for the gateway service accounts."""

from __future__ import annotations

from ..specs.tenant import TenantSpec
from .common import EXTENSIONS_GROUP, RESTRICTED_NAMESPACE_LABELS, SANDBOX_GROUP, TENANT_LABEL, Manifest, obj

CLAIMER_ROLE = "sandbox-claimer"

# What a gateway needs to hand out sandboxes, and nothing more, written down once (the
# table in docs/gateway.md must say the same; tests/test_gateway_rbac.py checks it): it
# manages claims, reads what backs them, and never writes pods, sandboxes or templates (a
# gateway that could would be able to run arbitrary pods in the tenant namespace).
# (API group, resource) -> verbs; the tenant Role below is generated from it.
GATEWAY_ACCESS: dict[tuple[str, str], tuple[str, ...]] = {
    (EXTENSIONS_GROUP, "sandboxclaims"): ("create", "delete", "get", "list", "watch"),
    (SANDBOX_GROUP, "sandboxes"): ("get", "list", "watch"),
    (EXTENSIONS_GROUP, "sandboxtemplates"): ("get", "list", "watch"),
    (EXTENSIONS_GROUP, "sandboxwarmpools"): ("get", "list", "watch"),
}
# And outside the tenant: the runtime catalogue ConfigMap, by name (components/manifests/catalogue.py).
GATEWAY_CATALOGUE_VERBS: tuple[str, ...] = ("get", "watch")


def claimer_rules() -> list[Manifest]:
    """GATEWAY_ACCESS as Role rules: neighbours with the same group and verbs share a rule."""
    rules: list[Manifest] = []
    for (group, resource), verbs in GATEWAY_ACCESS.items():
        last = rules[-1] if rules else None
        if last and last["apiGroups"] == [group] and last["verbs"] == list(verbs):
            last["resources"].append(resource)
        else:
            rules.append({"apiGroups": [group], "resources": [resource], "verbs": list(verbs)})
    return rules


def build_tenant(tenant: TenantSpec) -> list[Manifest]:
    ns = tenant.name
    labels = {"app.kubernetes.io/part-of": "sandbox-infra", TENANT_LABEL: ns}
    quota, defaults = tenant.quota, tenant.container_defaults
    manifests = [
        obj("v1", "Namespace", ns, labels={**labels, **RESTRICTED_NAMESPACE_LABELS}),
        obj("v1", "ResourceQuota", "sandbox-quota", ns, labels, spec={"hard": {
            "requests.cpu": str(quota.requests_cpu),
            "requests.memory": str(quota.requests_memory),
            "limits.cpu": str(quota.limits_cpu),
            "limits.memory": str(quota.limits_memory),
            "pods": str(quota.pods),
        }}),
        obj("v1", "LimitRange", "sandbox-limits", ns, labels, spec={"limits": [{
            "type": "Container",
            "defaultRequest": {"cpu": str(defaults.default_request_cpu), "memory": str(defaults.default_request_memory)},
            "default": {"cpu": str(defaults.default_limit_cpu), "memory": str(defaults.default_limit_memory)},
            "max": {"cpu": str(defaults.max_cpu), "memory": str(defaults.max_memory)},
        }]}),
        # Deny everything not explicitly allowed; each template's own policy adds its allowlist.
        obj("networking.k8s.io/v1", "NetworkPolicy", "default-deny", ns, labels, spec={
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
        }),
        obj("rbac.authorization.k8s.io/v1", "Role", CLAIMER_ROLE, ns, labels, rules=claimer_rules()),
    ]
    if tenant.gateway_service_accounts:
        subjects = [
            {"kind": "ServiceAccount", "name": sa.name, "namespace": sa.namespace or ns}
            for sa in tenant.gateway_service_accounts
        ]
        manifests.append(obj(
            "rbac.authorization.k8s.io/v1", "RoleBinding", CLAIMER_ROLE, ns, labels,
            subjects=subjects,
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": CLAIMER_ROLE},
        ))
    return manifests
