"""WarmPool component."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.warm_pool import build_warm_pool
from .specs.template import TemplateSpec
from .specs.warm_pool import WarmPoolSpec


class WarmPool(pulumi.ComponentResource):
    def __init__(
        self,
        spec: WarmPoolSpec,
        template: TemplateSpec,
        api_version: str,
        wait: bool,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:WarmPool", spec.name, None, opts)
        manifest = build_warm_pool(spec, template, api_version, wait)
        self.pool = kubernetes_resource(manifest, pulumi.ResourceOptions(parent=self, depends_on=depends_on))
        self.register_outputs({"name": spec.name, "namespace": template.tenant, "replicas": spec.replicas})
