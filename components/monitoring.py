"""Monitoring component: the controller's ServiceMonitor, the warm pools' PrometheusRule
(SLIs, burn-rate and model alerts) and a Grafana dashboard ConfigMap."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass

import pulumi

from .agent_sandbox import AgentSandbox
from .k8s import dependencies, place
from .manifests.monitoring import build_monitoring
from .prerequisites import RequiredCrds
from .specs.stack import StackSpec


@dataclass
class MonitoringArgs:
    stack: StackSpec
    """The stack whose pools are watched (`monitoring` in docs/config.md): each pool's SLI,
    alerts derived from its SLO (docs/monitoring.md) and one dashboard for all of them."""
    install: AgentSandbox
    """The agent-sandbox install: the objects live in its namespace and watch its controller."""
    crds: RequiredCrds | None = None
    """The lookup of the Prometheus Operator's CRDs: its ServiceMonitor and PrometheusRule wait
    for it (a missing operator stops them at the read); the dashboard ConfigMap does not."""


class Monitoring(pulumi.ComponentResource):
    """Needs the Prometheus Operator in the cluster (pass the lookup of its CRDs as `crds`)."""

    objects: pulumi.Output[list[str]]
    """`Kind/namespace/name` of every object created."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Monitoring", name, None, opts)
        manifests = build_monitoring(args.stack)
        operator = pulumi.ResourceOptions(depends_on=[args.crds] if args.crds is not None else [])
        place(self, manifests, [*dependencies(opts), args.install],
              {i: operator for i, m in enumerate(manifests) if m["apiVersion"].startswith("monitoring.coreos.com/")})
        self.objects = pulumi.Output.from_input(
            [f"{m['kind']}/{m['metadata']['namespace']}/{m['metadata']['name']}" for m in manifests])
        self.register_outputs({"objects": self.objects})
