"""WarmPool component: the pool and, for an autoscaled SLO pool, its autoscaler."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Any

import pulumi

from .k8s import as_spec, dependencies, metadata, one_of, place
from .manifests.sizing import build_pool_autoscaler
from .manifests.warm_pool import build_warm_pool
from .pool_readiness import PoolReadinessArgs, pool_readiness
from .prerequisites import RequiredCrds
from .sandbox_template import SandboxTemplate
from .specs.warm_pool import WarmPoolSpec


@dataclass
class WarmPoolArgs:
    spec: WarmPoolSpec | dict[str, Any]
    """The pool (`warmPools[]` in docs/config.md), as a `WarmPoolSpec` or a mapping of its keys:
    a fixed `replicas`, or an `slo` it is sized from (claim rate, ready time, hit ratio) with
    an optional autoscaler (`template` may be left out: it is the template passed)."""
    template: SandboxTemplate
    """The template the pool keeps sandboxes of; the pool lives in its namespace and waits for it."""
    wait_for_workloads: bool = True
    """Let `pulumi up` wait until the pool reports its replicas ready, where `spec.waitForReady`
    asks for it, at most `spec.readyTimeout`, failing at once on a pod the kubelet cannot
    start. Off only where no kubelet runs pods."""
    kubeconfig: str | pulumi.Output[str] | None = None
    """For that wait: the Kubernetes provider's kubeconfig, a path or the contents (as a secret);
    None: the ambient one ($KUBECONFIG, ~/.kube/config), as the provider."""
    context: str | None = None
    """For that wait: the provider's kubeconfig context; None: the current one."""
    keda: RequiredCrds | None = None
    """For a KEDA-scaled pool, the lookup of KEDA's CRDs: the ScaledObject waits for it (a
    missing KEDA stops it at the read); the pool itself does not need KEDA."""


class WarmPool(pulumi.ComponentResource):
    """A SandboxWarmPool of pre-warmed sandboxes (claimed in about 0.1 s instead of a cold
    start), and its HPA or KEDA ScaledObject for an autoscaled SLO. The autoscaler owns
    `spec.replicas` once the pool exists; Pulumi sets only the initial count."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    replicas: pulumi.Output[int]
    """The replicas the pool starts with (computed from the SLO when it has one)."""

    def __init__(self, name: str, args: WarmPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:WarmPool", name, None, opts)
        where = f"WarmPool {name!r}"
        template, api_version = args.template._spec, args.template._install.api_version
        self._spec = spec = as_spec(WarmPoolSpec, args.spec, where, template=template.name)
        one_of(spec.template, template.name, where, "template")
        self._template = args.template  # what monitoring and the catalogue read of the pool
        manifests = [build_warm_pool(spec, template, api_version), *build_pool_autoscaler(spec, template, api_version)]
        options = {i: pulumi.ResourceOptions(depends_on=[args.keda]) for i, m in enumerate(manifests)
                   if m["kind"] == "ScaledObject" and args.keda is not None}
        if spec.autoscaled:  # the autoscaler owns the count once the pool exists
            options[0] = pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
        pool = place(self, manifests, [*dependencies(opts), *args.template._needs, args.template], options)[0]
        readiness = None
        if args.wait_for_workloads and spec.waits_for_ready:
            meta = manifests[0]["metadata"]
            readiness = pool_readiness(
                f"{meta['namespace']}/{meta['name']}",
                PoolReadinessArgs(meta["namespace"], meta["name"], template.name, spec.replicas, api_version,
                                  spec.ready_timeout_seconds, args.kubeconfig, args.context),
                pulumi.ResourceOptions(parent=self, depends_on=[pool]))
        # What uses the pool's name waits for the pool to be ready, as it did when the provider waited.
        self.name = metadata(pool) if readiness is None else pulumi.Output.all(metadata(pool), readiness.id).apply(
            lambda values: values[0])
        self.namespace = metadata(pool, "namespace")
        self.api_version = pool.metadata.apply(lambda _: manifests[0]["apiVersion"])  # type: ignore[attr-defined]
        self.replicas = pulumi.Output.from_input(spec.replicas)
        outputs: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version,
                                   "replicas": self.replicas}
        if spec.slo is not None:
            outputs["sizing"] = spec.slo.sizing.summary()
        self.register_outputs(outputs)
