"""AdmissionPolicies component: the stack's rules as ValidatingAdmissionPolicies, enforced by
the kube-apiserver on everything that reaches the tenant namespaces (sandbox_policy.admission)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import dependencies, kubernetes_resource
from .manifests.admission import build_admission
from .specs.stack import StackSpec


@dataclass(frozen=True)
class AdmissionPoliciesArgs:
    stack: StackSpec
    """The stack whose rules are enforced (`policy.admission`: `audit` binds them with
    `[Audit, Warn]`, `enforce` with `[Deny]`; staging and prod enforce), judged with its
    `policy:` settings and scoped to its own tenant namespaces."""
    kubevirt_namespace: str | None = None
    """Where the stack installs KubeVirt (`KubeVirt.namespace`): its KubeVirt CR is judged there.
    None when the stack does not install KubeVirt."""


class AdmissionPolicies(pulumi.ComponentResource):
    """A ValidatingAdmissionPolicy and its binding for every rule the API server can judge from
    one object (docs/admission.md lists the rest and why). Each binding is created after its
    policy: a binding naming a policy that does not exist yet is accepted but judges nothing."""

    policies: list[str]
    """The names of the ValidatingAdmissionPolicies."""

    def __init__(self, name: str, args: AdmissionPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:AdmissionPolicies", name, None, opts)
        manifests = build_admission(args.stack, args.kubevirt_namespace)
        after = dependencies(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        self.policy_resources = {m["metadata"]["name"]: kubernetes_resource(m, child)
                                 for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"}
        self.bindings = [
            kubernetes_resource(m, pulumi.ResourceOptions(
                parent=self, depends_on=[*after, self.policy_resources[m["spec"]["policyName"]]]))
            for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"
        ]
        self.policies = sorted(self.policy_resources)
        self.register_outputs({"mode": args.stack.policy.admission, "policies": self.policies})
