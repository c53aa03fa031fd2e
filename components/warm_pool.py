"""WarmPool component: the pool and, for an autoscaled SLO pool, its autoscaler."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import api_version, dependencies, kubernetes_resource, metadata
from .manifests.sizing import build_pool_autoscaler
from .manifests.warm_pool import build_warm_pool
from .pool_readiness import PoolReadiness, PoolReadinessArgs
from .specs.agent_sandbox import AgentSandboxSpec
from .specs.template import TemplateSpec
from .specs.warm_pool import WarmPoolSpec


@dataclass(frozen=True)
class WarmPoolArgs:
    spec: WarmPoolSpec
    """The pool (`warmPools[]` in docs/config.md): a fixed `replicas`, or an `slo` it is
    sized from (claim rate, ready time, hit ratio) with an optional autoscaler."""
    template: TemplateSpec
    """The template the pool keeps sandboxes of (its tenant is the pool's namespace)."""
    api_version: str = AgentSandboxSpec().api_version
    """The agent-sandbox API version to write; default: that of the pinned release."""
    wait_for_workloads: bool = True
    """Let `pulumi up` wait until the pool reports its replicas ready, where `spec.waitForReady`
    asks for it (`cluster.waitForWorkloads`), at most `spec.readyTimeout`, failing at once on a pod
    the kubelet cannot start. Off only where no kubelet runs pods."""
    kubeconfig: pulumi.Input[str] | None = None
    """For that wait: the Kubernetes provider's kubeconfig, a path or the contents (as a secret);
    None: the ambient one ($KUBECONFIG, ~/.kube/config), as the provider."""
    context: str | None = None
    """For that wait: the provider's kubeconfig context; None: the current one."""
    autoscaler_depends_on: tuple[pulumi.Resource, ...] = ()
    """What an autoscaler needs first besides the pool (for KEDA: its CRD lookup)."""


class WarmPool(pulumi.ComponentResource):
    """A SandboxWarmPool of pre-warmed sandboxes (claimed in about 0.1 s instead of a cold
    start), and its HPA or KEDA ScaledObject for an autoscaled SLO. The autoscaler owns
    `spec.replicas` once the pool exists; Pulumi sets only the initial count."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    replicas: int
    """The replicas the pool starts with (computed from the SLO when it has one)."""

    def __init__(self, name: str, args: WarmPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:WarmPool", name, None, opts)
        spec, template = args.spec, args.template
        manifest = build_warm_pool(spec, template, args.api_version)
        ignore = ["spec.replicas"] if spec.autoscaled else None
        self.pool = kubernetes_resource(
            manifest, pulumi.ResourceOptions(parent=self, depends_on=dependencies(opts), ignore_changes=ignore)
        )
        self.readiness: PoolReadiness | None = None
        if args.wait_for_workloads and spec.waits_for_ready:
            meta = manifest["metadata"]
            self.readiness = PoolReadiness(
                f"{meta['namespace']}/{meta['name']}",
                PoolReadinessArgs(meta["namespace"], meta["name"], template.name, spec.replicas, args.api_version,
                                  spec.ready_timeout_seconds, args.kubeconfig, args.context),
                pulumi.ResourceOptions(parent=self, depends_on=[self.pool]))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[self.pool, *args.autoscaler_depends_on])
        self.autoscalers = [kubernetes_resource(m, inside) for m in build_pool_autoscaler(spec, template, args.api_version)]
        # What uses the pool's name waits for the pool to be ready, as it did when the provider waited.
        pool_name = metadata(self.pool)
        self.name = pool_name if self.readiness is None else pulumi.Output.all(pool_name, self.readiness.id).apply(
            lambda values: values[0])
        self.namespace = metadata(self.pool, "namespace")
        self.api_version = api_version(self.pool, manifest)
        self.replicas = spec.replicas
        outputs: dict[str, object] = {"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version,
                                      "replicas": spec.replicas}
        if spec.slo is not None:
            outputs["sizing"] = spec.slo.sizing.summary()
        self.register_outputs(outputs)
