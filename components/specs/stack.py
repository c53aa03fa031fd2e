"""The whole stack config: one model, validated before anything is created."""

from __future__ import annotations

from dataclasses import dataclass

from .agent_sandbox import AgentSandboxSpec
from .base import Spec
from .cluster import ClusterSpec
from .policy import PolicySpec
from .template import TemplateSpec
from .tenant import TenantSpec
from .warm_pool import WarmPoolSpec


class StackSpec(Spec):
    cluster: ClusterSpec
    agent_sandbox: AgentSandboxSpec = AgentSandboxSpec()
    policy: PolicySpec = PolicySpec()
    tenants: list[TenantSpec] = []
    templates: list[TemplateSpec] = []
    warm_pools: list[WarmPoolSpec] = []

    def template(self, name: str) -> TemplateSpec:
        return next(t for t in self.templates if t.name == name)


@dataclass(frozen=True)
class Issue:
    """One problem found by the cross-reference checks, located by its config path."""

    path: tuple[str | int, ...]
    value: object
    problem: str


def _allowed(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "none defined"


def _duplicates(section: str, names: list[str]) -> list[Issue]:
    seen: set[str] = set()
    issues = []
    for index, name in enumerate(names):
        if name in seen:
            issues.append(Issue((section, index, "name"), name, f"is already used by another entry of {section}"))
        seen.add(name)
    return issues


def cross_reference_issues(spec: StackSpec) -> list[Issue]:
    """Checks that span several entries: names unique, references resolve, stack caps hold."""
    tenants = [t.name for t in spec.tenants]
    templates = [t.name for t in spec.templates]
    issues = (
        _duplicates("tenants", tenants)
        + _duplicates("templates", templates)
        + _duplicates("warmPools", [p.name for p in spec.warm_pools])
    )
    for index, template in enumerate(spec.templates):
        if template.tenant not in tenants:
            issues.append(
                Issue(("templates", index, "tenant"), template.tenant,
                      f"is not a tenant of this stack; allowed: {_allowed(tenants)}")
            )
        if spec.policy.require_runtime_class and template.trust == "untrusted" and not template.runtime_class_name:
            issues.append(
                Issue(("templates", index, "runtimeClassName"), None,
                      "is required for untrusted templates because policy.requireRuntimeClass is true "
                      "(set a sandboxing runtime class such as gvisor or kata)")
            )
    for index, pool in enumerate(spec.warm_pools):
        if pool.template not in templates:
            issues.append(
                Issue(("warmPools", index, "template"), pool.template,
                      f"does not name a template of this stack; allowed: {_allowed(templates)}")
            )
            continue
        if pool.replicas > spec.policy.max_warm_pool_replicas:
            issues.append(
                Issue(("warmPools", index, "replicas"), pool.replicas,
                      f"exceeds the stack's cap policy.maxWarmPoolReplicas={spec.policy.max_warm_pool_replicas}")
            )
        gpus = spec.template(pool.template).gpu_resources
        if gpus and not pool.allow_gpu:
            issues.append(
                Issue(("warmPools", index, "allowGpu"), False,
                      f"must be true: template {pool.template!r} requests GPUs ({', '.join(sorted(gpus))}) "
                      "and idle warm GPU sandboxes need an explicit opt-in")
            )
    return issues
