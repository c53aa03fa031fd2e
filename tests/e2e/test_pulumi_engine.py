"""The real Pulumi engine against the live API server, the dev stack's whole life: `pulumi up`
(every object admitted, KubeVirt's stored as sent), a no-op second update, drift found by
`pulumi refresh` and put back by the next `up`, and a destroy that keeps the CRDs.
(test_pulumi_stacks.py takes the other shipped stacks up, and runs the policy pack.)

Needs the Pulumi CLI, the Python language host and pulumi-resource-kubernetes from
tools/build.sh; skips with the build's recorded reason when they are missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from .controlplane import ControlPlane
from .fake_node import FakeControllerManager
from .pulumi_project import (
    Project,
    assert_every_kubevirt_object_stored_as_sent,
    assert_every_object_stored,
    make_project,
    register_virt_operator_crds,
)


@pytest.fixture(scope="module")
def project(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("project"), plane, ("dev",))
    register_virt_operator_crds(project.kube)
    manifests = project.rendered("dev")
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    # pulumi destroy deletes in the foreground and waits for namespaces to go: both need
    # kube-controller-manager's garbage collector and namespace controller.
    with FakeControllerManager(project.kube, namespaces, sorted({(m["apiVersion"], m["kind"]) for m in manifests})):
        yield project


def test_up_creates_every_object_and_the_api_server_admits_each(project: Project) -> None:
    print(project.pulumi("up", "--yes", "--skip-preview").stdout[-1500:])
    manifests = assert_every_object_stored(project, "dev")
    assert {"VirtualMachinePool", "KubeVirt", "SandboxWarmPool", "Secret"} <= {m["kind"] for m in manifests}


def test_every_kubevirt_object_is_stored_exactly_as_the_engine_sent_it(project: Project) -> None:
    """KubeVirt v1.9.0's real CRDs prune what their schemas do not know: nothing sent may be lost."""
    assert_every_kubevirt_object_stored_as_sent(project, "dev", json.loads(project.pulumi("stack", "export").stdout))


def test_a_second_up_changes_nothing(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")


def test_refresh_shows_drift_and_the_next_up_puts_it_back(project: Project) -> None:
    pool = next(m for m in project.rendered("dev") if m["kind"] == "SandboxWarmPool")
    name, namespace, wanted = pool["metadata"]["name"], pool["metadata"]["namespace"], pool["spec"]["replicas"]
    # Someone edits the pool behind Pulumi's back (kubectl scale, another controller...).
    project.kube.patch(pool["apiVersion"], "SandboxWarmPool", name, namespace, {"spec": {"replicas": wanted + 3}})

    refreshed = project.pulumi("refresh", "--yes", "--skip-preview", "--diff")
    print(refreshed.stdout[-3000:])
    assert re.search(rf"~ replicas\s*: {wanted} => {wanted + 3}\b", refreshed.stdout), "refresh did not show the drift"
    # After the refresh the state holds the drifted value, so the engine plans an update...
    preview = project.pulumi("preview", "--diff", "--expect-no-changes", check=False)
    assert preview.returncode != 0 and "replicas" in preview.stdout, preview.stdout[-3000:]
    # ...and `up` puts the declared value back, in place.
    uid = project.kube.get(pool["apiVersion"], "SandboxWarmPool", name, namespace)["metadata"]["uid"]
    project.pulumi("up", "--yes", "--skip-preview")
    live = project.kube.get(pool["apiVersion"], "SandboxWarmPool", name, namespace)
    assert live["spec"]["replicas"] == wanted
    assert live["metadata"]["uid"] == uid
    project.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")


def test_destroy_keeps_the_crds(project: Project) -> None:
    project.pulumi("destroy", "--yes", "--skip-preview")
    manifests = project.rendered("dev")
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    assert crds
    for crd in crds:
        assert project.kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
    pool = next(m for m in manifests if m["kind"] == "SandboxWarmPool")
    assert not project.kube.exists(pool["apiVersion"], "SandboxWarmPool", pool["metadata"]["name"],
                                   pool["metadata"]["namespace"])
