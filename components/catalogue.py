"""RuntimeCatalogue component: the `runtimes.json` ConfigMap and who may read it."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .errors import ConfigError
from .k8s import as_spec, dependencies, metadata, place
from .manifests.catalogue import build_catalogue, published_pods
from .sandbox_template import SandboxTemplate
from .specs.runtime import RuntimeCatalogueSpec
from .tenant import Tenant
from .vm_environment import VmEnvironment
from .warm_pool import WarmPool


@dataclass
class RuntimeCatalogueArgs:
    spec: RuntimeCatalogueSpec | dict[str, Any] = field(default_factory=RuntimeCatalogueSpec)
    """Where the catalogue is published (`catalogue` in docs/config.md: `namespace`, `name`,
    `clusterDomain`) and, in `podRuntimes`, the id and display name each pod runtime is listed
    under, as a `RuntimeCatalogueSpec` or a mapping of those keys; default: `sandbox-catalogue`
    / `runtime-catalogue`, every template passed under its own name. Capacity is left out on
    purpose: the catalogue says what exists and where, not how much of it."""
    templates: list[SandboxTemplate] = field(default_factory=list)
    """The templates the pod runtimes publish: a session is a claim of one of them."""
    pools: list[WarmPool] = field(default_factory=list)
    """The warm pools listed with their template's runtime; each pool's template must be passed."""
    vm_environments: list[VmEnvironment] = field(default_factory=list)
    """The VM runtimes, each listed under its runtime id and display name."""
    tenants: list[Tenant] = field(default_factory=list)
    """The tenants whose gateway service accounts may read the catalogue (exactly this ConfigMap,
    nothing else in its namespace). When `spec.namespace` is one of theirs, the catalogue lives
    there and waits for that tenant; otherwise it creates its namespace."""


class RuntimeCatalogue(pulumi.ComponentResource):
    """One entry per runtime id, in one shape whatever backs it (pod sandbox or KubeVirt VM):
    namespace, what a session is created from, warm pools, Service DNS name and agent port
    (docs/runtimes.md). Gateways read it instead of knowing the stack."""

    config_map: pulumi.Output[str]
    """The ConfigMap gateways read (`runtimes.json`)."""
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: RuntimeCatalogueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:RuntimeCatalogue", name, None, opts)
        where = f"RuntimeCatalogue {name!r}"
        spec = as_spec(RuntimeCatalogueSpec, args.spec, where)
        pods = published_pods(spec, [(t._spec, t._install.api_version) for t in args.templates],
                              [(p._spec, p._template._spec) for p in args.pools], where)
        vms = [v._spec for v in args.vm_environments]
        ids = [p.id for p in pods] + [v.id for v in vms]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ConfigError(f"{where}: runtime id(s) {', '.join(map(repr, twice))} listed more than once "
                              "(spec.podRuntimes and vm_environments share one set of ids)")
        manifests = build_catalogue(spec, pods, vms, [t._spec for t in args.tenants])
        home = [t for t in args.tenants if t._spec.name == spec.namespace]  # the catalogue lives in its namespace
        created = place(self, manifests, [*dependencies(opts), *home])
        config_map = next(r for m, r in zip(manifests, created, strict=True) if m["kind"] == "ConfigMap")
        self.config_map = metadata(config_map)
        self.namespace = metadata(config_map, "namespace")
        self.register_outputs({"namespace": self.namespace, "name": self.config_map})
