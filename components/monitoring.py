"""Monitoring component: the controller's ServiceMonitor, the warm pools' PrometheusRule
(SLIs, burn-rate and model alerts) and a Grafana dashboard ConfigMap."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass

import pulumi

from .agent_sandbox import AgentSandbox
from .k8s import dependencies, place
from .manifests.monitoring import build_monitoring
from .specs.stack import StackSpec


@dataclass
class MonitoringArgs:
    stack: StackSpec
    """The stack whose pools are watched (`monitoring` in docs/config.md): each pool's SLI,
    alerts derived from its SLO (docs/monitoring.md) and one dashboard for all of them."""
    install: AgentSandbox
    """The agent-sandbox install: the objects live in its namespace and watch its controller."""


class Monitoring(pulumi.ComponentResource):
    """Needs the Prometheus Operator in the cluster: make it depend on the lookup of its CRDs
    (`opts.depends_on`, a `RequiredCrds`)."""

    objects: pulumi.Output[list[str]]
    """`Kind/namespace/name` of every object created."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Monitoring", name, None, opts)
        manifests = build_monitoring(args.stack)
        place(self, manifests, [*dependencies(opts), args.install])
        self.objects = pulumi.Output.from_input(
            [f"{m['kind']}/{m['metadata']['namespace']}/{m['metadata']['name']}" for m in manifests])
        self.register_outputs({"objects": self.objects})
