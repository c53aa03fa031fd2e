"""RuntimeCatalogue component: the `runtimes.json` ConfigMap and who may read it."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass

import pulumi

from .k8s import dependencies, metadata, place
from .manifests.catalogue import build_catalogue
from .specs.stack import StackSpec


@dataclass
class RuntimeCatalogueArgs:
    stack: StackSpec
    """The stack whose `runtimes` are listed (`runtimes` and `catalogue` in docs/config.md):
    one entry per runtime id, whatever backs it (pod sandbox or KubeVirt VM). Capacity is left
    out on purpose; each tenant's gateways may read exactly this ConfigMap, nothing else."""


class RuntimeCatalogue(pulumi.ComponentResource):
    """Make it depend on the tenant (`opts.depends_on`) when the catalogue lives in a tenant
    namespace; it creates its own namespace otherwise."""

    config_map: pulumi.Output[str]
    """The ConfigMap gateways read (`runtimes.json`)."""
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: RuntimeCatalogueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:RuntimeCatalogue", name, None, opts)
        manifests = build_catalogue(args.stack)
        created = place(self, manifests, dependencies(opts))
        config_map = next(r for m, r in zip(manifests, created, strict=True) if m["kind"] == "ConfigMap")
        self.config_map = metadata(config_map)
        self.namespace = metadata(config_map, "namespace")
        self.register_outputs({"namespace": self.namespace, "name": self.config_map})
