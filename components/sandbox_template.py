"""SandboxTemplate component."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.sandbox_template import build_cilium_network_policy, build_sandbox_template
from .specs.template import TemplateSpec


class SandboxTemplate(pulumi.ComponentResource):
    def __init__(
        self,
        spec: TemplateSpec,
        api_version: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:SandboxTemplate", spec.name, None, opts)
        manifest = build_sandbox_template(spec, api_version)
        policy = build_cilium_network_policy(spec)
        # The template's network policy first: no sandbox of it starts before its egress is enforced.
        self.network_policy = None if policy is None else kubernetes_resource(
            policy, pulumi.ResourceOptions(parent=self, depends_on=depends_on))
        enforced = [self.network_policy] if self.network_policy is not None else []
        self.template = kubernetes_resource(
            manifest, pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *enforced]))
        self.register_outputs({"name": spec.name, "namespace": spec.tenant, "apiVersion": manifest["apiVersion"]})
