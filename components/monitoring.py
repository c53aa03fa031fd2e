"""Monitoring component: the controller's ServiceMonitor, the warm pools' PrometheusRule
(SLIs, burn-rate and model alerts) and a Grafana dashboard ConfigMap."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import dependencies, kubernetes_resource
from .manifests.monitoring import build_monitoring
from .specs.stack import StackSpec


@dataclass(frozen=True)
class MonitoringArgs:
    stack: StackSpec
    """The stack whose pools are watched (`monitoring` in docs/config.md): each pool's SLI,
    alerts derived from its SLO (docs/monitoring.md) and one dashboard for all of them."""
    crds_ready: tuple[pulumi.Resource, ...] = ()
    """The lookups of the Prometheus Operator's CRDs: its objects wait for them."""


class Monitoring(pulumi.ComponentResource):
    """Needs the Prometheus Operator in the cluster (its CRDs are looked up first); make it
    depend on the agent-sandbox install (`opts.depends_on`), whose namespace it lives in."""

    objects: list[str]
    """`Kind/namespace/name` of every object created."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:Monitoring", name, None, opts)
        manifests = build_monitoring(args.stack)
        after = dependencies(opts)
        plain = pulumi.ResourceOptions(parent=self, depends_on=after)
        custom = pulumi.ResourceOptions(parent=self, depends_on=[*after, *args.crds_ready])
        self.resources = [kubernetes_resource(m, custom if m["apiVersion"].startswith("monitoring.coreos.com/")
                                              else plain) for m in manifests]
        self.objects = [f"{m['kind']}/{m['metadata']['namespace']}/{m['metadata']['name']}" for m in manifests]
        self.register_outputs({"objects": self.objects})
