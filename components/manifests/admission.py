"""The stack's rules as ValidatingAdmissionPolicies and bindings (sandbox_policy.admission)."""

from __future__ import annotations

from sandbox_policy.admission import admission_policies

from ..specs.stack import StackSpec
from .common import PATCH_FORCE, Manifest


def build_admission(spec: StackSpec, kubevirt_namespace: str | None) -> list[Manifest]:
    """Judged under the stack's own settings; the KubeVirt CR's rules where KubeVirt runs."""
    tenants = [tenant.name for tenant in spec.tenants]
    objects = admission_policies(spec.policy_context(), spec.policy.admission, spec.cluster.name, tenants,
                                 kubevirt_namespace)
    for manifest in objects:
        manifest["metadata"]["annotations"][PATCH_FORCE] = "true"
    return objects
