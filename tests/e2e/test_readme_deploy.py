"""The README's local deploy walkthrough, run word for word against a live control plane:
the block between `<!-- local-deploy: begin -->` and `<!-- local-deploy: end -->`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .controlplane import ControlPlane
from .fake_node import FakeControllerManager
from .helpers import render, require
from .pulumi_project import PULUMI, copy_project, register_virt_operator_crds
from .toolchain import ROOT, TOOLCHAIN_DIR


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- local-deploy: begin -->\s*```sh\n(.*?)```\s*<!-- local-deploy: end -->", text, re.S)
    assert found, "README.md lost its local-deploy block"
    return found.group(1)


def test_readme_local_deploy_block_works(plane: ControlPlane, tmp_path: Path) -> None:
    require(*PULUMI)
    checkout = tmp_path / "checkout"
    copy_project(checkout)
    # What `make local-cluster` leaves for the block: the control plane's kubeconfig.
    (checkout / ".cache" / "local-cluster").mkdir(parents=True)
    shutil.copy(plane.kubeconfig, checkout / ".cache" / "local-cluster" / "kubeconfig")
    kube = plane.client()
    register_virt_operator_crds(kube)
    manifests = render("dev")
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG"))}
    env.update(PULUMI_HOME=str(tmp_path / "pulumi-home"), TOOLCHAIN_DIR=str(TOOLCHAIN_DIR),
               PULUMI_SKIP_UPDATE_CHECK="true")
    with FakeControllerManager(kube, namespaces, sorted({(m["apiVersion"], m["kind"]) for m in manifests})):
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block()], cwd=checkout, env=env,
                                capture_output=True, text=True, timeout=1800)
    print(result.stdout[-5000:], result.stderr[-3000:])
    assert result.returncode == 0
    assert re.search(r"\+ \d+ created", result.stdout), "pulumi up created nothing"
    # destroy kept the CRDs and removed the stack's objects; stack rm removed the stack file.
    for crd in (m for m in manifests if m["kind"] == "CustomResourceDefinition"):
        assert kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
    pool = next(m for m in manifests if m["kind"] == "SandboxWarmPool")
    assert not kube.exists(pool["apiVersion"], "SandboxWarmPool", pool["metadata"]["name"], pool["metadata"]["namespace"])
    assert not (checkout / "stacks" / "Pulumi.local.yaml").exists()
