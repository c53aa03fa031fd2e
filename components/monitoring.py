"""Monitoring component: the controller's ServiceMonitor, the warm pools' PrometheusRule
(SLIs, burn-rate and model alerts) and a Grafana dashboard ConfigMap."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .agent_sandbox import AgentSandbox
from .errors import ConfigError
from .k8s import as_spec, dependencies, place
from .manifests.monitoring import MonitoringScope, build_monitoring
from .prerequisites import RequiredCrds
from .specs.monitoring import MonitoringSpec
from .warm_pool import WarmPool


@dataclass
class MonitoringArgs:
    spec: MonitoringSpec | dict[str, Any]
    """What Prometheus and Grafana are asked to watch (`monitoring` in docs/config.md: SLO
    window, scrape interval, labels for the Prometheus's selectors, runbook URL, dashboard), as
    a `MonitoringSpec` or a mapping of those keys (`{}`: the defaults). `enabled` may be left
    out: creating the component is what enables monitoring."""
    install: AgentSandbox
    """The agent-sandbox install: the objects live in its namespace, scrape its controller and
    read the metrics its release exports."""
    cluster: str
    """The cluster's name (`cluster.name`): the dashboard's title and uid."""
    pools: list[WarmPool] = field(default_factory=list)
    """The warm pools watched: each gets its SLI recording rules, the alerts derived from its SLO
    (docs/monitoring.md) and a dashboard row. The objects do not wait for the pools: monitoring
    is in place while they fill."""
    crds: RequiredCrds | None = None
    """The lookup of the Prometheus Operator's CRDs: its ServiceMonitor and PrometheusRule wait
    for it (a missing operator stops them at the read); the dashboard ConfigMap does not."""


class Monitoring(pulumi.ComponentResource):
    """Needs the Prometheus Operator in the cluster (pass the lookup of its CRDs as `crds`)."""

    objects: pulumi.Output[list[str]]
    """`Kind/namespace/name` of every object created."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Monitoring", name, None, opts)
        where = f"Monitoring {name!r}"
        settings = as_spec(MonitoringSpec, args.spec, where, enabled=True)
        if not settings.enabled:  # a stack's switch for having this component; here it would create nothing
            raise ConfigError(f"{where}: spec.enabled = False: a Monitoring component always creates its objects; "
                              "leave spec.enabled out, or do not create the component")
        scope = MonitoringScope(settings, tuple((p._spec, p._template._spec) for p in args.pools),
                                args.install._spec.version, args.cluster)
        manifests = build_monitoring(scope)
        operator = pulumi.ResourceOptions(depends_on=[args.crds] if args.crds is not None else [])
        place(self, manifests, [*dependencies(opts), args.install],
              {i: operator for i, m in enumerate(manifests) if m["apiVersion"].startswith("monitoring.coreos.com/")})
        self.objects = pulumi.Output.from_input(
            [f"{m['kind']}/{m['metadata']['namespace']}/{m['metadata']['name']}" for m in manifests])
        self.register_outputs({"objects": self.objects})
