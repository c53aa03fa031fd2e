"""The node stack on a real node, shared by test_node.py and benchmarks/claim_latency.py
(`--real-node`): a control plane with the agent-sandbox CRDs, the real agent-sandbox
controller out of cluster, a real node (node.py) with the scheduler's binding done by
`Binder`, and the controller-manager chores a node-less control plane lacks (fake_node.py).
The stack itself is applied by the caller: `pulumi up` in the tests, `apply()` elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .controller import agent_sandbox_controller
from .controlplane import control_plane, uses_cluster_crds
from .fake_node import FakeControllerManager
from .helpers import render
from .kube import apply_all, wait_established
from .node import Binder, Node, real_node
from .warm_pool_env import WarmPoolEnv

STACK = "node"
FIXTURES = Path(__file__).parent / "stacks"


@dataclass
class NodeEnv(WarmPoolEnv):
    node: Node

    def apply(self) -> None:
        """The stack's objects as admin (what `pulumi up` creates, without the engine)."""
        apply_all(self.kube, [m for m in self.manifests if m["kind"] != "CustomResourceDefinition"])


@contextlib.contextmanager
def node_env(workdir: Path, stack: str = STACK) -> Iterator[NodeEnv]:
    manifests = render(stack, FIXTURES)
    # The stack brings its own agent-sandbox (`install: external`): the CRDs of the pinned release.
    crds = [m for m in render("dev") if m["kind"] == "CustomResourceDefinition"]
    with control_plane(workdir / "plane", cluster_crds=uses_cluster_crds(manifests)) as plane:
        kube = plane.client()
        apply_all(kube, crds)
        wait_established(kube, crds)
        namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
        # The node first: on the way out the controller stops before the node deletes the pods
        # (else it would recreate them as they go).
        with (real_node(plane, workdir / "node") as node, Binder(kube, node.name),
              FakeControllerManager(kube, namespaces), agent_sandbox_controller(plane)):
            yield NodeEnv(plane, kube, manifests, node)
