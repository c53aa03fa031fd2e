"""`sandbox-infra fleet preview|up` through the Pulumi Automation API on the live control plane:
waves run in order, and a stack whose update fails in the first wave leaves the next wave
untouched (checked on the API server, not only in the report)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .controlplane import ControlPlane, free_port
from .fake_node import FakeControllerManager
from .pulumi_project import FIXTURES, Project, make_project, register_virt_operator_crds

WAVES = {"canary": ["dev"], "staging": ["staging"]}


@pytest.fixture(scope="module")
def project(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("fleet"), plane, ("dev", "staging", "broken"),
                           extra_stack_files=(FIXTURES / "Pulumi.broken.yaml",))
    # The broken stack's context: a cluster at a port where nothing listens.
    config = yaml.safe_load(plane.kubeconfig.read_text())
    config["clusters"].append({"name": "unreachable", "cluster": {
        "server": f"https://127.0.0.1:{free_port()}", "certificate-authority": str(plane.pki / "ca.crt")}})
    config["contexts"].append({"name": "unreachable", "context": {"cluster": "unreachable", "user": "admin"}})
    plane.kubeconfig.write_text(yaml.safe_dump(config))
    register_virt_operator_crds(project.kube)
    namespaces = [m["metadata"]["name"] for s in ("dev", "staging") for m in project.rendered(s) if m["kind"] == "Namespace"]
    with FakeControllerManager(project.kube, namespaces):
        yield project


def fleet(project: Project, tmp_path: Path, action: str, waves: list[dict]) -> tuple[int, dict[str, str], str]:
    """Run the CLI as a user would; returns its exit code, each stack's result and its output."""
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"waves": waves}))
    confirm = ["--yes"] if action == "up" else []
    result = subprocess.run([sys.executable, "-m", "sandbox_infra", "--stacks-dir", str(project.stacks_dir),
                             "fleet", "--fleet", str(path), action, *confirm],
                            cwd=project.path, env=project.env, capture_output=True, text=True, timeout=1800)
    print(result.stdout, result.stderr[-4000:])
    table = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    return result.returncode, {row[0]: row[2] for row in table}, result.stdout + result.stderr


def tenant_exists(project: Project, stack: str) -> bool:
    namespace = next(m["metadata"]["name"] for m in project.rendered(stack)
                     if m["kind"] == "Namespace" and m["metadata"]["name"].startswith("agents-"))
    return project.kube.exists("v1", "Namespace", namespace)


def test_fleet_preview_runs_both_waves_and_changes_nothing(project: Project, tmp_path: Path) -> None:
    code, results, _ = fleet(project, tmp_path, "preview",
                             [{"name": wave, "stacks": stacks} for wave, stacks in WAVES.items()])
    assert code == 0
    assert results == {"dev": "succeeded", "staging": "succeeded"}
    assert not tenant_exists(project, "dev") and not tenant_exists(project, "staging"), "a preview applied something"


def test_fleet_up_stops_before_the_next_wave_when_a_stack_fails(project: Project, tmp_path: Path) -> None:
    code, results, output = fleet(project, tmp_path, "up", [
        {"name": "canary", "stacks": ["dev", "broken"], "maxParallel": 2},
        {"name": "staging", "stacks": ["staging"]},
    ])
    assert code == 1, output[-2000:]
    assert results == {"dev": "succeeded", "broken": "failed", "staging": "skipped"}
    broken = next(line for line in output.splitlines() if line.startswith("broken "))
    assert "unreachable" in broken or "connection refused" in broken, f"the report hides why: {broken}"
    # The healthy stack of the first wave went up; the second wave never touched the cluster.
    assert tenant_exists(project, "dev")
    assert not tenant_exists(project, "staging")
    assert project.pulumi("stack", "history", "--json", stack="staging").stdout.strip() in ("[]", "null", "")
