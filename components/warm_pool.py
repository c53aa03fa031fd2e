"""WarmPool component: the pool and, for an autoscaled SLO pool, its autoscaler."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.sizing import build_pool_autoscaler
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
        autoscaler_depends_on: list[pulumi.Resource] | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:WarmPool", spec.name, None, opts)
        manifest = build_warm_pool(spec, template, api_version, wait)
        # The autoscaler owns spec.replicas once the pool exists; Pulumi sets only the initial count.
        ignore = ["spec.replicas"] if spec.autoscaled else None
        self.pool = kubernetes_resource(
            manifest, pulumi.ResourceOptions(parent=self, depends_on=depends_on, ignore_changes=ignore)
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[self.pool, *(autoscaler_depends_on or [])])
        self.autoscalers = [kubernetes_resource(m, inside) for m in build_pool_autoscaler(spec, template, api_version)]
        outputs: dict[str, object] = {"name": spec.name, "namespace": template.tenant, "replicas": spec.replicas}
        if spec.slo is not None:
            outputs["sizing"] = spec.slo.sizing.summary()
        self.register_outputs(outputs)
