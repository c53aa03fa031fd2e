"""`doctor`: offline checks, the checks against a cluster (a scripted one here; a live
control plane in tests/e2e/test_doctor.py), a fix for every failure, exit 1 on a blocker."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.prerequisites import required_crds
from components.specs.loader import load_stack, spec_from_config
from sandbox_infra import doctor
from sandbox_infra.cli import main

from .conftest import stack_config


def checks_of(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict[str, str]]]:
    code = main(["doctor", *argv, "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] == (code == 0)
    return code, {check["name"]: check for check in document["checks"]}


@pytest.mark.usefixtures("upstream")
def test_dev_offline_passes_with_what_it_can_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = checks_of(capsys, "-s", "dev", "--offline")
    assert code == 0
    assert checks["kube context"]["status"] == "skip"
    assert checks["upstream pins"]["status"] == "ok" and "sha256" in checks["upstream pins"]["detail"]
    assert checks["images"]["detail"].startswith("placeholder images, allowed in dev: ghcr.io/example/")
    assert checks["KubeVirt /dev/kvm"]["status"] == "ok"  # dev emulates


@pytest.mark.usefixtures("upstream")
def test_placeholder_images_block_outside_dev(capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = checks_of(capsys, "-s", "staging", "--offline")
    assert code == 1
    assert checks["images"]["status"] == "fail"
    assert "ghcr.io/example/agent-python-runtime:3.12.7" in checks["images"]["detail"] and checks["images"]["fix"]
    assert checks["RuntimeClasses"] == {"name": "RuntimeClasses", "status": "skip",
                                        "detail": "needs the cluster: gvisor", "fix": ""}


@pytest.mark.usefixtures("upstream")
def test_every_failure_has_a_fix_and_the_table_shows_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Pulumi CLI
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code, checks = checks_of(capsys, "-s", "prod")
    assert code == 1
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert {c["name"] for c in failed} >= {"pulumi CLI", "kube context"}
    assert all(c["fix"] for c in failed)
    assert main(["doctor", "-s", "prod"]) == 1
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "fail" in rows["kube"] and "--offline" in rows["kube"]


class ScriptedCluster:
    """Stands in for doctor.Kube: objects by API path."""

    objects: dict[str, Any] = {}

    def __init__(self, kubeconfig: Path, context: str | None) -> None:
        self.context, self.server = context or "scripted", "https://scripted"

    def get(self, path: str) -> dict[str, Any] | None:
        return self.objects.get(path)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[type[ScriptedCluster]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(doctor, "Kube", ScriptedCluster)
    monkeypatch.setattr(ScriptedCluster, "objects", {"/version": {"gitVersion": "v1.36.3"}})
    yield ScriptedCluster


@pytest.mark.usefixtures("upstream")
def test_runtime_classes_the_templates_name_must_exist(capsys: pytest.CaptureFixture[str],
                                                       cluster: type[ScriptedCluster]) -> None:
    _, checks = checks_of(capsys, "-s", "staging")
    assert checks["kube context"]["status"] == "ok" and "server v1.36.3" in checks["kube context"]["detail"]
    assert checks["RuntimeClasses"]["status"] == "fail" and checks["RuntimeClasses"]["detail"] == "missing: gvisor"
    cluster.objects["/apis/node.k8s.io/v1/runtimeclasses/gvisor"] = {"kind": "RuntimeClass"}
    _, checks = checks_of(capsys, "-s", "staging")
    assert checks["RuntimeClasses"] == {"name": "RuntimeClasses", "status": "ok", "detail": "present: gvisor", "fix": ""}


def _spec(**changes: Any):
    config = stack_config("dev")
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return spec_from_config(config, source="test")


def test_crds_of_external_installs_are_required() -> None:
    assert required_crds(load_stack("dev")) == {}
    needed = required_crds(_spec(**{"agentSandbox.install": "external", "kubevirt.install": "external"}))
    assert "sandboxwarmpools.extensions.agents.x-k8s.io" in needed["agent-sandbox"]
    assert needed["KubeVirt"] == ["kubevirts.kubevirt.io", "virtualmachines.kubevirt.io",
                                  "virtualmachineinstances.kubevirt.io", "virtualmachinepools.pool.kubevirt.io"]


def test_a_missing_external_crd_is_a_blocker(cluster: type[ScriptedCluster]) -> None:
    spec = _spec(**{"agentSandbox.install": "external"})
    kube = ScriptedCluster(Path("unused"), None)
    checks = {c.name: c for c in doctor._cluster_checks(spec, [], kube)}
    assert checks["CRDs (agent-sandbox)"].status == "fail" and "install agent-sandbox first" in checks["CRDs (agent-sandbox)"].fix
    for crd in required_crds(spec)["agent-sandbox"]:
        cluster.objects[f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"] = {}
    assert doctor._cluster_checks(spec, [], kube)[0].status == "ok"


@pytest.mark.parametrize(("nodes", "operator", "status"), [
    ([{"devices.kubevirt.io/kvm": "1k"}, {}], True, "ok"),
    ([{}], True, "fail"),            # KubeVirt runs and no node offers KVM: VMs will not start
    ([{}], False, "warn"),           # before the first up nothing advertises the device yet
])
def test_kvm_when_emulation_is_off(nodes: list[dict], operator: bool, status: str, cluster: type[ScriptedCluster]) -> None:
    spec = _spec(**{"kubevirt.useEmulation": False})
    cluster.objects["/api/v1/nodes"] = {"items": [{"metadata": {"name": f"n{i}"}, "status": {"allocatable": a}}
                                                  for i, a in enumerate(nodes)]}
    if operator:
        cluster.objects["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kubevirts.kubevirt.io"] = {}
    check = doctor._kvm(spec.kubevirt, "dev", ScriptedCluster(Path("unused"), None))
    assert check.status == status and (check.fix != "") == (status != "ok")


class _ApiServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer t0ken":
            self.send_response(401)
            self.end_headers()
            return
        body = {"/version": {"gitVersion": "v1.36.3"}}.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_kube_reads_a_kubeconfig_context_with_a_token(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plugin = tmp_path / "get-token"
    plugin.write_text("#!/bin/sh\n[ -n \"$FAIL\" ] && { echo 'not logged in' >&2; exit 1; }\n"
                      "echo '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", "
                      "\"status\": {\"token\": \"t0ken\"}}'\n")
    plugin.chmod(0o755)
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "current-context": "other",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
            "users": [{"name": "u", "user": {"token": "t0ken"}},
                      {"name": "plugin", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                           "command": str(plugin)}}},
                      {"name": "wrong", "user": {"token": "wrong"}}],
            "contexts": [{"name": "mine", "context": {"cluster": "c", "user": "u"}},
                         {"name": "other", "context": {"cluster": "c", "user": "plugin"}},
                         {"name": "wrong", "context": {"cluster": "c", "user": "wrong"}}],
        }))
        kube = doctor.Kube(kubeconfig, "mine")
        assert kube.get("/version") == {"gitVersion": "v1.36.3"}
        assert kube.get("/apis/node.k8s.io/v1/runtimeclasses/gvisor") is None
        # The current context's user is an exec plugin: the official loader runs it.
        assert doctor.Kube(kubeconfig, None).get("/version") == {"gitVersion": "v1.36.3"}
        with pytest.raises(doctor.KubeUnreachable, match="HTTP 401"):
            doctor.Kube(kubeconfig, "wrong").get("/version")
        with pytest.raises(doctor.KubeUnreachable, match="context 'nope' is not in"):
            doctor.Kube(kubeconfig, "nope")
    finally:
        server.shutdown()


def test_a_failing_credentials_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "gke",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                  "command": "sh", "args": ["-c", "echo 'not logged in' >&2; exit 1"]}}}],
        "contexts": [{"name": "gke", "context": {"cluster": "c", "user": "u"}}],
    }))
    with pytest.raises(doctor.KubeUnreachable, match=r"context 'gke': credentials plugin failed: .*not logged in"):
        doctor.Kube(kubeconfig, None)
    kubeconfig.write_text("clusters: [")
    with pytest.raises(doctor.KubeUnreachable, match="not a usable kubeconfig"):
        doctor.Kube(kubeconfig, None)


def test_the_kubernetes_client_is_imported_only_for_cluster_checks() -> None:
    """Offline commands start fast: importing the CLI and doctor must not import the client."""
    code = "import sandbox_infra.cli, sandbox_infra.doctor, sys; print('kubernetes' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
