"""AdmissionPolicies component: the stack's rules as ValidatingAdmissionPolicies, enforced by
the kube-apiserver on everything that reaches the tenant namespaces (sandbox_policy.admission)."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.admission import build_admission
from .specs.stack import StackSpec


class AdmissionPolicies(pulumi.ComponentResource):
    def __init__(self, spec: StackSpec, kubevirt_namespace: str | None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:AdmissionPolicies", "admission", None, opts)
        manifests = build_admission(spec, kubevirt_namespace)
        child = pulumi.ResourceOptions(parent=self)
        self.policies = {m["metadata"]["name"]: kubernetes_resource(m, child)
                         for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"}
        # A binding naming a policy that does not exist yet is accepted but judges nothing.
        self.bindings = [
            kubernetes_resource(m, pulumi.ResourceOptions(parent=self, depends_on=[self.policies[m["spec"]["policyName"]]]))
            for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"
        ]
        self.register_outputs({"mode": spec.policy.admission, "policies": sorted(self.policies)})
