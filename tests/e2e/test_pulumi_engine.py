"""The real Pulumi engine against the live API server, the dev stack's whole life: `pulumi up`
(every object admitted), a no-op second update, drift found by `pulumi refresh` and put
back by the next `up`, previews with the policy pack installed on its own (its folder and requirements only), and a destroy that keeps
the CRDs.

Needs the Pulumi CLI, the Python language host and pulumi-resource-kubernetes from
tools/build.sh; skips with the build's recorded reason when they are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from .controlplane import ControlPlane
from .fake_node import FakeControllerManager
from .helpers import SHIPPED_STACKS
from .pulumi_project import FIXTURES, Project, make_project, register_virt_operator_crds, standalone_pack
from .test_api_server import contains


@pytest.fixture(scope="module")
def pack_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Path]]:
    """The standalone pack (a fresh virtualenv, pip install) is built in the background from the
    start, while the stacks go up: it shares nothing with them."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(standalone_pack, tmp_path_factory.mktemp("policy-pack"))


@pytest.fixture(scope="module")
def project(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, pack_built: Future[Path]) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("project"), plane, (*SHIPPED_STACKS, "insecure"),
                           extra_stack_files=(FIXTURES / "Pulumi.insecure.yaml",))
    register_virt_operator_crds(project.kube)
    manifests = project.rendered("dev")
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    # pulumi destroy deletes in the foreground and waits for namespaces to go: both need
    # kube-controller-manager's garbage collector and namespace controller.
    with FakeControllerManager(project.kube, namespaces, sorted({(m["apiVersion"], m["kind"]) for m in manifests})):
        yield project


def test_up_creates_every_object_and_the_api_server_admits_each(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    manifests = project.rendered("dev")
    assert {"VirtualMachinePool", "KubeVirt", "SandboxWarmPool", "Secret"} <= {m["kind"] for m in manifests}
    for manifest in manifests:
        meta = manifest["metadata"]
        stored = project.kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        if "spec" in manifest:
            assert contains(stored["spec"], manifest["spec"]), f"{manifest['kind']} {meta['name']} differs"


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


@pytest.fixture(scope="module")
def pack_previews(project: Project, pack_built: Future[Path]) -> Iterator[dict[str, Future[CompletedProcess]]]:
    """`preview` with the standalone pack of every shipped stack and the insecure one, all at once:
    previews of different stacks change nothing and lock only their own stack."""
    pack = pack_built.result()
    checked = {stack: True for stack in SHIPPED_STACKS} | {"insecure": False}
    with ThreadPoolExecutor(max_workers=len(checked)) as pool:
        yield {stack: pool.submit(project.preview_with_pack, stack, pack, check) for stack, check in checked.items()}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_standalone_policy_pack_passes_on_shipped_stacks(pack_previews: dict[str, Future[CompletedProcess]],
                                                         stack: str) -> None:
    pack_previews[stack].result()  # fails the test when the preview failed


def test_standalone_policy_pack_fails_an_insecure_stack(pack_previews: dict[str, Future[CompletedProcess]]) -> None:
    result = pack_previews["insecure"].result()
    output = result.stdout + result.stderr
    print(output[-3000:])
    assert result.returncode != 0
    assert "[mandatory]" in output and "sandbox-image-source" in output, \
        "the preview should fail on a mandatory policy violation, not on anything else"


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
