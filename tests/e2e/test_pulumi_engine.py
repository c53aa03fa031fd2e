"""The real Pulumi engine against the live API server: `pulumi up` of the dev stack, a no-op
second update, policy-pack previews, and a destroy that keeps the CRDs.

Needs the Pulumi CLI, the Python language host and pulumi-resource-kubernetes from
tools/build.sh; skips with the build's recorded reason when they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.manifests.common import Manifest
from components.specs.loader import load_stack
from components.upstream import upstream_dir

from .controlplane import ControlPlane
from .fake_node import FakeControllerManager
from .helpers import SHIPPED_STACKS, render, require
from .kube import Kube
from .test_api_server import contains
from .toolchain import ROOT, TOOLCHAIN_DIR

PULUMI = ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")
POLICY_PACK = ROOT / "policies" / "PulumiPolicy.yaml"
FIXTURES = Path(__file__).parent / "stacks"
# The public, dev-only passphrase of the dev stack's secrets (see stacks/Pulumi.dev.yaml);
# the other stacks get it too, for the throwaway local backend of this run.
E2E_PASSPHRASE = "sandbox-infra-dev"


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    kube: Kube

    def rendered(self, stack: str) -> list[Manifest]:
        """The stack as this project copy configures it (after the test's config changes)."""
        return render(stack, self.path / "stacks")

    def pulumi(self, *args: str, stack: str = "dev", check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args, "--stack", stack, "--non-interactive", "--color", "never"],
                                cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result


@pytest.fixture(scope="module")
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    require(*PULUMI)
    plane: ControlPlane = request.getfixturevalue("plane")
    path = tmp_path_factory.mktemp("project")
    # A copy of the project, so that stack init/config never touch the working tree.
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, path / name)
    for name in ("components", "policies"):
        (path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "stacks", path / "stacks")
    shutil.copy(FIXTURES / "Pulumi.insecure.yaml", path / "stacks")
    (path / ".venv").symlink_to(ROOT / ".venv")
    env = {
        **plane.env(),
        "PATH": f"{TOOLCHAIN_DIR / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_HOME": str(path / ".pulumi-home"),
        "PULUMI_CONFIG_PASSPHRASE": E2E_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "UPSTREAM_DIR": str(upstream_dir()),
    }
    state = path / ".state"
    state.mkdir()
    subprocess.run(["pulumi", "login", f"file://{state}"], cwd=path, env=env, check=True, capture_output=True)
    project = Project(path, env, plane.client())
    for stack in (*SHIPPED_STACKS, "insecure"):
        project.pulumi("stack", "init", stack=stack)
        # No kubelet runs pods here: never wait for workloads to become ready.
        project.pulumi("config", "set", "--path", "cluster.waitForWorkloads", "false", stack=stack)
    # VM runtimes need the VirtualMachinePool CRD, which virt-operator creates at run time;
    # the operator needs a node. The KubeVirt install itself (operator, CR) stays.
    dev = load_stack("dev", path / "stacks")
    for index in reversed([i for i, r in enumerate(dev.runtimes) if r.execution_kind == "kubevirt-vm"]):
        project.pulumi("config", "rm", "--path", f"runtimes[{index}]")
    manifests = project.rendered("dev")
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    # pulumi destroy deletes in the foreground and waits for namespaces to go: both need
    # kube-controller-manager's garbage collector and namespace controller.
    with FakeControllerManager(project.kube, namespaces, sorted({(m["apiVersion"], m["kind"]) for m in manifests})):
        yield project


def test_up_creates_every_object_and_the_api_server_admits_every_custom_resource(project: Project) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    for manifest in project.rendered("dev"):
        meta = manifest["metadata"]
        stored = project.kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        if "spec" in manifest and manifest["kind"] not in ("Deployment",):  # skipAwait annotations differ
            assert contains(stored["spec"], manifest["spec"]), f"{manifest['kind']} {meta['name']} differs"


def test_a_second_up_changes_nothing(project: Project) -> None:
    result = project.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")
    assert result.returncode == 0


@pytest.mark.skipif(not POLICY_PACK.exists(), reason="policies/PulumiPolicy.yaml does not exist yet: the CrossGuard "
                    "policy pack comes with the policy-pack issue")
@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_policy_pack_passes_on_shipped_stacks(project: Project, stack: str) -> None:
    project.pulumi("preview", "--policy-pack", "policies", stack=stack)


@pytest.mark.skipif(not POLICY_PACK.exists(), reason="policies/PulumiPolicy.yaml does not exist yet: the CrossGuard "
                    "policy pack comes with the policy-pack issue")
def test_policy_pack_fails_an_insecure_stack(project: Project) -> None:
    result = project.pulumi("preview", "--policy-pack", "policies", stack="insecure", check=False)
    output = result.stdout + result.stderr
    print(output[-3000:])
    assert result.returncode != 0
    assert "[mandatory]" in output, "the preview should fail on a mandatory policy violation, not on anything else"


def test_destroy_keeps_the_crds(project: Project) -> None:
    project.pulumi("destroy", "--yes", "--skip-preview")
    crds = [m for m in project.rendered("dev") if m["kind"] == "CustomResourceDefinition"]
    assert crds
    for crd in crds:
        assert project.kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
    pool = next(m for m in project.rendered("dev") if m["kind"] == "SandboxWarmPool")
    assert not project.kube.exists(pool["apiVersion"], "SandboxWarmPool", pool["metadata"]["name"],
                                   pool["metadata"]["namespace"])
