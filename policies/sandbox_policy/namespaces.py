"""Namespace rules: Pod Security `restricted` everywhere, guardrails around every tenant."""

from __future__ import annotations

from collections.abc import Iterator

from .cel import literal
from .rule import Context, Manifest, RuleFamily, Violation
from .workloads import SANDBOX_KINDS, as_dict, as_list, dig, labels

FAMILY = RuleFamily("namespaces")
PSS_ENFORCE = "pod-security.kubernetes.io/enforce"


@FAMILY.object_rule(
    "namespace-pss-restricted", severity="high", kinds={"Namespace"},
    description="Every namespace enforces Pod Security `restricted`, so the API server rejects any pod that "
                "slips past these checks (the KubeVirt operator namespace is the one documented exception).",
    remediation=f"Label the namespace {PSS_ENFORCE}: restricted (the builders' RESTRICTED_NAMESPACE_LABELS).",
    cel=f"object.?metadata.?labels[?{literal(PSS_ENFORCE)}].orValue('') == 'restricted'",
)
def namespace_pss_restricted(manifest: Manifest, context: Context) -> Iterator[str]:
    level = labels(manifest).get(PSS_ENFORCE)
    if level != "restricted":
        yield f"label {PSS_ENFORCE} is {level or 'not set'}, not restricted"


def is_default_deny(policy: Manifest) -> bool:
    """Selects every pod and allows nothing, in both directions."""
    spec = as_dict(policy.get("spec"))
    selector = as_dict(spec.get("podSelector"))
    return (
        not selector.get("matchLabels") and not selector.get("matchExpressions")
        and {"Ingress", "Egress"} <= set(as_list(spec.get("policyTypes")))
        and not as_list(spec.get("ingress")) and not as_list(spec.get("egress"))
    )


def _identity(manifest: Manifest) -> tuple[str, str]:
    return str(manifest.get("kind")), str(dig(manifest, "metadata", "name"))


@FAMILY.stack_rule(
    "tenant-namespace-guardrails", severity="high",
    description="Every namespace that holds sandboxes is created by the stack and carries a ResourceQuota, a "
                "LimitRange and a default-deny NetworkPolicy.",
    remediation="Declare the namespace as a tenant (tenants[]); the Tenant component creates all three.",
)
def tenant_namespace_guardrails(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    first_sandbox: dict[str, int] = {}
    present: dict[str, set[str]] = {}
    for index, manifest in enumerate(manifests):
        kind, namespace = manifest.get("kind"), dig(manifest, "metadata", "namespace")
        if kind == "Namespace":
            present.setdefault(str(dig(manifest, "metadata", "name")), set()).add("Namespace")
        elif namespace and kind in SANDBOX_KINDS:
            # Report at the same object whatever order the objects arrive in (the engine's is not fixed).
            current = first_sandbox.get(namespace)
            if current is None or _identity(manifest) < _identity(manifests[current]):
                first_sandbox[namespace] = index
        elif namespace and kind in ("ResourceQuota", "LimitRange"):
            present.setdefault(namespace, set()).add(kind)
        elif namespace and kind == "NetworkPolicy" and is_default_deny(manifest):
            present.setdefault(namespace, set()).add("default-deny NetworkPolicy")
    for namespace, index in sorted(first_sandbox.items()):
        missing = [what for what in ("Namespace", "ResourceQuota", "LimitRange", "default-deny NetworkPolicy")
                   if what not in present.get(namespace, set())]
        if missing:
            yield index, Violation(f"namespace {namespace} holds sandboxes but has no {', '.join(missing)}", namespace)
