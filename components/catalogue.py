"""RuntimeCatalogue component: the `runtimes.json` ConfigMap and who may read it."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.catalogue import build_catalogue
from .specs.stack import StackSpec


class RuntimeCatalogue(pulumi.ComponentResource):
    def __init__(
        self,
        spec: StackSpec,
        tenant_namespaces: dict[str, pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:RuntimeCatalogue", spec.catalogue.name, None, opts)
        manifests = build_catalogue(spec)
        created = [kubernetes_resource(m, pulumi.ResourceOptions(parent=self)) for m in manifests if m["kind"] == "Namespace"]
        namespace = created[0] if created else tenant_namespaces[spec.catalogue.namespace]
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        self.resources = [kubernetes_resource(m, inside) for m in manifests if m["kind"] != "Namespace"]
        self.register_outputs({"namespace": spec.catalogue.namespace, "name": spec.catalogue.name})
