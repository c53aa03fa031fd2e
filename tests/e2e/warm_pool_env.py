"""The warm-pool environment shared by test_warm_pools.py and benchmarks/claim_latency.py:
a control plane with the dev stack applied, the real agent-sandbox controller, and the
fake kubelet / controller-manager chores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import load_stack
from components.upstream import UpstreamLoader

from .controller import agent_sandbox_controller
from .controlplane import ControlPlane, control_plane, uses_cluster_crds
from .fake_node import FakeControllerManager, FakeKubelet
from .kube import Kube, apply_all, is_true, wait_established

EXTENSIONS_GROUP = "extensions.agents.x-k8s.io"
EXTENSIONS = f"{EXTENSIONS_GROUP}/v1beta1"
SANDBOXES = "agents.x-k8s.io/v1beta1"


@dataclass
class WarmPoolEnv:
    plane: ControlPlane
    kube: Kube
    manifests: list[Manifest]

    def first(self, kind: str) -> Manifest:
        return next(m for m in self.manifests if m["kind"] == kind)

    def pool_status(self, name: str, namespace: str) -> dict:
        return self.kube.get(EXTENSIONS, "SandboxWarmPool", name, namespace).get("status", {})

    def pool_sandboxes(self, pool: str, namespace: str) -> list[Manifest]:
        """Sandboxes the pool owns right now (not yet handed to a claim)."""
        items = self.kube.list(SANDBOXES, "Sandbox", namespace)["items"]
        return [s for s in items if any(ref["kind"] == "SandboxWarmPool" and ref["name"] == pool
                                        for ref in s["metadata"].get("ownerReferences", []))]

    def ready_pool_sandboxes(self, pool: str, namespace: str) -> list[Manifest]:
        return [s for s in self.pool_sandboxes(pool, namespace) if is_true(s, "Ready")]


@contextlib.contextmanager
def warm_pool_env(workdir: Path, stack: str = "dev", pod_start_seconds: float = 0.0) -> Iterator[WarmPoolEnv]:
    manifests = render_stack(load_stack(stack), UpstreamLoader())
    with control_plane(workdir, cluster_crds=uses_cluster_crds(manifests)) as plane:
        kube = plane.client()
        crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
        others = [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
        apply_all(kube, crds)
        wait_established(kube, crds)
        namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
        custom_kinds = sorted({(m["apiVersion"], m["kind"]) for m in others if m["apiVersion"].startswith(EXTENSIONS_GROUP)})
        # The controller first, so that the CRDs convert through its loopback webhook from the start.
        with (agent_sandbox_controller(plane), FakeControllerManager(kube, namespaces, custom_kinds),
              FakeKubelet(kube, start_seconds=pod_start_seconds)):
            apply_all(kube, others)  # leaves out kinds only an operator would create (KubeVirt VMs)
            yield WarmPoolEnv(plane, kube, manifests)
