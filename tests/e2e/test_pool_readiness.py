"""The bound of `waitForReady` through the real engine, on a control plane without a node (so
it runs wherever the e2e suite runs; the fail-fast path needs a kubelet: test_node.py).
The node-root stack's pool, with `readyTimeout: 15s`: its pod is never scheduled, so
`pulumi up` fails at the bound, saying what the pod waits for; once the fake kubelet runs
the pod, the next `up` waits again and succeeds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .controller import agent_sandbox_controller
from .controlplane import control_plane, uses_cluster_crds
from .fake_node import FakeControllerManager, FakeKubelet
from .helpers import ready_timeout_message, render, require
from .kube import apply_all, wait_established
from .pulumi_project import FIXTURES, PULUMI, Project, make_project

STACK = "node-root"
BOUND = 15


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    require("etcd", "kube-apiserver", "agent-sandbox-controller", *PULUMI)
    workdir: Path = tmp_path_factory.mktemp("pool-readiness")
    crds = [m for m in render("dev") if m["kind"] == "CustomResourceDefinition"]  # the stack's install is external
    with control_plane(workdir / "plane", cluster_crds=uses_cluster_crds(render(STACK, FIXTURES))) as plane:
        kube = plane.client()
        apply_all(kube, crds)
        wait_established(kube, crds)
        project = make_project(workdir / "project", plane, (STACK,), extra_stack_files=(FIXTURES / f"Pulumi.{STACK}.yaml",))
        project.config(STACK, "cluster.waitForWorkloads", True)
        project.config(STACK, "warmPools[0].readyTimeout", f"{BOUND}s")
        namespaces = [m["metadata"]["name"] for m in project.rendered(STACK) if m["kind"] == "Namespace"]
        with agent_sandbox_controller(plane), FakeControllerManager(kube, namespaces):
            yield project


def test_pulumi_up_fails_at_the_ready_timeout_saying_what_the_pods_wait_for(project: Project) -> None:
    message, output = ready_timeout_message(
        lambda: project.pulumi("up", "--yes", "--skip-preview", stack=STACK, check=False, timeout=300), BOUND)
    assert re.fullmatch(
        r"error: PoolNotReady: warm pool agents-node-root/root-image \(template root-image\) is not ready after "
        rf"{BOUND} s: 0 of 1 replicas ready; pod root-image-\S+: Pending: not scheduled to a node yet\. "
        r"If it only needs longer, raise the pool's readyTimeout \(at most 1h\)", message), message
    assert "Traceback" not in output


def test_the_next_up_waits_again_and_succeeds_once_the_pods_run(project: Project) -> None:
    with FakeKubelet(project.kube):
        result = project.pulumi("up", "--yes", "--skip-preview", stack=STACK, check=False, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert re.search(r"PoolReadiness \S+ created", result.stdout), result.stdout[-4000:]
    preview = json.loads(project.pulumi("preview", "--json", stack=STACK).stdout)
    ops = {step["urn"].rsplit("::", 1)[-1]: step["op"] for step in preview["steps"] if "PoolReadiness" in step["urn"]}
    # The preview lists changed resources only: an unchanged pool plans no new wait.
    assert set(ops.values()) <= {"same"}, f"an unchanged pool is not waited for again: {ops}"
