"""The stack's rules as ValidatingAdmissionPolicies and bindings (sandbox_policy.admission)."""

from __future__ import annotations

from sandbox_policy.admission import admission_policies
from sandbox_policy.rule import Context
from sandbox_policy.settings import PolicySpec
from sandbox_policy.vocabulary import Environment

from .common import PATCH_FORCE, Manifest


def build_admission(policy: PolicySpec, environment: Environment, cluster: str, tenants: list[str],
                    kubevirt_namespace: str | None) -> list[Manifest]:
    """Judged under the stack's own settings (`policy` in the cluster's environment), scoped to
    its tenant namespaces; the KubeVirt CR's rules where KubeVirt runs."""
    context = Context(environment, policy, f"stack {cluster}")
    objects = admission_policies(context, policy.admission, cluster, tenants, kubevirt_namespace)
    for manifest in objects:
        manifest["metadata"]["annotations"][PATCH_FORCE] = "true"
    return objects
