"""The example programs (examples/) go up through the real Pulumi engine against the live
API server: the components work as a library, in programs of their own, without this
project's stack config. Each example is copied with the project's virtualenv beside it,
as its Pulumi.yaml expects, and uses the ambient provider (KUBECONFIG of the plane)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .controlplane import ControlPlane
from .fake_node import FakeControllerManager
from .helpers import require
from .pulumi_project import PULUMI, engine_env, kubevirt_stored_as_sent, register_virt_operator_crds
from .toolchain import ROOT

CLOUD_INIT = "#cloud-config\nusers: [{name: agent}]\n"


def pulumi(path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["pulumi", *args, "--non-interactive", "--color", "never"], cwd=path, env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"pulumi {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def example_project(name: str, workdir: Path, plane: ControlPlane) -> tuple[Path, dict[str, str]]:
    require(*PULUMI)
    path = workdir / "examples" / name
    shutil.copytree(ROOT / "examples" / name, path)
    (workdir / ".venv").symlink_to(ROOT / ".venv")  # Pulumi.yaml: virtualenv ../../.venv
    env = engine_env(path, plane.env())
    state = workdir / "state"
    state.mkdir()
    pulumi(path, env, "login", f"file://{state}")
    pulumi(path, env, "stack", "init", "e2e")
    # No kubelet runs pods here: never wait for workloads to become ready.
    pulumi(path, env, "config", "set", "waitForWorkloads", "false")
    return path, env


def outputs(path: Path, env: dict[str, str]) -> dict:
    return json.loads(pulumi(path, env, "stack", "output", "--json").stdout)


def test_warm_pool_for_one_team_goes_up(plane: ControlPlane, tmp_path: Path) -> None:
    path, env = example_project("warm-pool-team", tmp_path, plane)
    kube = plane.client()
    with FakeControllerManager(kube, ["team-a"]):
        pulumi(path, env, "up", "--yes", "--skip-preview")
        out = outputs(path, env)
        assert out == {"namespace": "team-a", "claimerRole": "sandbox-claimer", "template": "python",
                       "warmPool": "python", "apiVersion": "extensions.agents.x-k8s.io/v1beta1"}
        pool = kube.get(out["apiVersion"], "SandboxWarmPool", "python", "team-a")
        assert pool["spec"]["replicas"] == 3
        assert kube.get(out["apiVersion"], "SandboxTemplate", "python", "team-a")
        namespace = kube.get("v1", "Namespace", "team-a")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        pulumi(path, env, "up", "--yes", "--skip-preview", "--expect-no-changes")


def test_vm_environment_goes_up(plane: ControlPlane, tmp_path: Path) -> None:
    path, env = example_project("vm-environment", tmp_path, plane)
    pulumi(path, env, "config", "set", "--secret", "cloudInit", CLOUD_INIT)
    kube = plane.client()
    register_virt_operator_crds(kube)  # what virt-operator would register (no node runs it here)
    with FakeControllerManager(kube, ["vm-agents"]):
        pulumi(path, env, "up", "--yes", "--skip-preview")
        out = outputs(path, env)
        assert out == {"namespace": "vm-agents", "service": "devbox", "kind": "VirtualMachinePool",
                       "kubevirtVersion": "v1.9.0"}
        assert kube.get("v1", "Service", "devbox", "vm-agents")
        assert kube.get("pool.kubevirt.io/v1beta1", "VirtualMachinePool", "devbox", "vm-agents")
        state = pulumi(path, env, "stack", "export").stdout
        assert "#cloud-config" not in state, "the cloud-init reached the state in plain text"
        # Validated by KubeVirt's real CRDs, and stored exactly as sent.
        kinds = sorted(m["kind"] for m in kubevirt_stored_as_sent(kube, json.loads(state)))
        print(f"vm-environment: KubeVirt objects stored as sent: {kinds}")
        assert {"KubeVirt", "VirtualMachinePool"} <= set(kinds)
