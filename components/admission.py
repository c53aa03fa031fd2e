"""AdmissionPolicies component: the stack's rules as ValidatingAdmissionPolicies, enforced by
the kube-apiserver on everything that reaches the tenant namespaces (sandbox_policy.admission)."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Optional

import pulumi

from .k8s import dependencies, place
from .kubevirt import KubeVirt
from .manifests.admission import build_admission
from .specs.stack import StackSpec


@dataclass
class AdmissionPoliciesArgs:
    stack: StackSpec
    """The stack whose rules are enforced (`policy.admission`: `audit` binds them with
    `[Audit, Warn]`, `enforce` with `[Deny]`; staging and prod enforce), judged with its
    `policy:` settings and scoped to its own tenant namespaces."""
    kubevirt: Optional[KubeVirt] = None
    """The stack's KubeVirt install: its KubeVirt CR is judged in the operator's namespace.
    None when the stack does not install KubeVirt."""


class AdmissionPolicies(pulumi.ComponentResource):
    """A ValidatingAdmissionPolicy and its binding for every rule the API server can judge from
    one object (docs/admission.md lists the rest and why). The bindings are created after the
    policies: a binding naming a policy that does not exist yet is accepted but judges nothing."""

    policies: pulumi.Output[list[str]]
    """The names of the ValidatingAdmissionPolicies."""

    def __init__(self, name: str, args: AdmissionPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("sandbox-infra:index:AdmissionPolicies", name, None, opts)
        manifests = build_admission(args.stack, args.kubevirt._namespace if args.kubevirt is not None else None)
        place(self, manifests, dependencies(opts))
        self.policies = pulumi.Output.from_input(
            sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"))
        self.register_outputs({"mode": args.stack.policy.admission, "policies": self.policies})
