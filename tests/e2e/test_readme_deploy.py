"""The README's local deploy walkthrough, run word for word against the control plane that
`make local-cluster` starts (the same module, in its own process): the block between
`<!-- local-deploy: begin -->` and `<!-- local-deploy: end -->`, `destroy` included."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from .helpers import render, require
from .kube import Kube
from .pulumi_project import PULUMI, copy_project
from .toolchain import ROOT, TOOLCHAIN_DIR


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- local-deploy: begin -->\s*```sh\n(.*?)```\s*<!-- local-deploy: end -->", text, re.S)
    assert found, "README.md lost its local-deploy block"
    return found.group(1)


@contextlib.contextmanager
def local_cluster(directory: Path) -> Iterator[Kube]:
    """What `make local-cluster` runs (`python -m tests.e2e.local_cluster`), in its own process;
    stopped with Ctrl-C (SIGINT) as a user stops it, which must end it cleanly."""
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.local_cluster", "--dir", str(directory)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = process.stdout.readline()  # printed once the API server is up and the stand-ins run
        assert "is up" in banner, banner + process.stdout.read()
        server = yaml.safe_load((directory / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
        pki = directory / "pki"
        yield Kube(server, str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, process.stdout.read()
    assert not directory.exists(), "Ctrl-C left the local cluster's files behind"


def test_readme_local_deploy_block_works(tmp_path: Path) -> None:
    require("etcd", "kube-apiserver", *PULUMI)
    checkout = tmp_path / "checkout"
    copy_project(checkout)
    manifests = render("dev")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG"))}
    # Pulumi's defaults, as a newcomer has them: unlike the other e2e tests (pulumi_project.engine_env),
    # this one keeps the state checkpoints after every step. (conftest's GOGC stays: it changes how
    # often Go collects garbage, not what any command does.)
    env.update(PULUMI_HOME=str(tmp_path / "pulumi-home"), TOOLCHAIN_DIR=str(TOOLCHAIN_DIR),
               PULUMI_SKIP_UPDATE_CHECK="true")
    # The block runs in a second terminal while `make local-cluster` runs in the first.
    with local_cluster(checkout / ".cache" / "local-cluster") as kube:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block()], cwd=checkout, env=env,
                                capture_output=True, text=True, timeout=1800)
        print(result.stdout[-5000:], result.stderr[-3000:])
        assert result.returncode == 0
        assert re.search(r"\+ \d+ created", result.stdout), "pulumi up created nothing"
        # destroy kept the CRDs and removed the stack's objects; stack rm removed the stack file.
        for crd in (m for m in manifests if m["kind"] == "CustomResourceDefinition"):
            assert kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
        pool = next(m for m in manifests if m["kind"] == "SandboxWarmPool")
        assert not kube.exists(pool["apiVersion"], "SandboxWarmPool", pool["metadata"]["name"],
                               pool["metadata"]["namespace"])
    assert not (checkout / "stacks" / "Pulumi.local.yaml").exists()
