"""Offline checks of the e2e support code (these run without the toolchain)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.specs.loader import load_stack
from components.upstream import UpstreamLoader
from sandbox_infra.check import check_stack
from tests.e2e import images, toolchain
from tests.e2e.fake_node import FakeKubelet, _Loop, pod_usage, quantity
from tests.e2e.kube import Kube

E2E_STACKS = Path(__file__).parent / "e2e" / "stacks"


def test_the_insecure_e2e_stack_is_valid_config_that_the_policy_rules_block() -> None:
    """The CrossGuard e2e test expects `pulumi preview --policy-pack policies` to fail on it: it must
    load as valid config and break a mandatory rule (the pack runs these same rules)."""
    spec = load_stack("insecure", E2E_STACKS)
    assert spec.policy.enforcement == "mandatory"
    report, _ = check_stack("insecure", E2E_STACKS, UpstreamLoader())
    assert not report.passed
    assert "sandbox-image-source" in {finding.rule.name for finding in report.blocking}



def test_the_node_e2e_stack_is_valid_config_that_passes_the_policy_rules() -> None:
    """tests/e2e/test_node.py deploys it on a real node: it must be a stack the fleet's rules allow."""
    spec = load_stack("node", E2E_STACKS)
    assert spec.templates[0].image.startswith(images.REGISTRY + "/")
    assert spec.templates[0].readiness_path == "/healthz"
    report, _ = check_stack("node", E2E_STACKS, UpstreamLoader())
    assert report.passed, [f"{f.rule.name}: {f.message}" for f in report.blocking]


def test_the_root_image_e2e_stack_passes_every_rule_so_only_the_kubelet_can_stop_it() -> None:
    spec = load_stack("node-root", E2E_STACKS)
    assert spec.templates[0].image == images.ROOT_USER.name and images.ROOT_USER.user == ""
    assert spec.templates[0].run_as_user is None
    report, _ = check_stack("node-root", E2E_STACKS, UpstreamLoader())
    assert report.passed, [f"{f.rule.name}: {f.message}" for f in report.blocking]


def _archive(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_image_archives_are_reproducible_and_differ_where_their_inputs_do() -> None:
    first, digest = images.oci_archive(images.SANDBOX, b"program")
    again, digest_again = images.oci_archive(images.SANDBOX, b"program")
    assert (first, digest) == (again, digest_again)
    assert images.oci_archive(images.SANDBOX, b"other program")[1] != digest
    root, root_digest = images.oci_archive(images.ROOT_USER, b"program")
    assert root_digest != digest
    files = _archive(first)
    index = json.loads(files["index.json"])
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == images.SANDBOX.name

    def blob(archive: dict[str, bytes], digest: str) -> bytes:
        return archive[f"blobs/{digest.replace(':', '/')}"]

    manifest = json.loads(blob(files, digest))
    assert json.loads(blob(files, manifest["config"]["digest"]))["config"]["User"] == "65532:65532"
    root_files = _archive(root)
    root_manifest = json.loads(blob(root_files, root_digest))
    assert json.loads(blob(root_files, root_manifest["config"]["digest"]))["config"]["User"] == ""
    layer = blob(files, manifest["layers"][0]["digest"])
    assert _archive(layer) == {"sandbox": b"program"}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert {(m.name, m.mtime, m.uid, m.mode) for m in tar.getmembers()} == {
            ("sandbox", 0, 0, 0o755), ("tmp", 0, 0, 0o1777)}


@pytest.mark.parametrize(("text", "value"), [("250m", "0.25"), ("1", "1"), ("512Mi", "536870912"), ("2G", "2000000000")])
def test_quantity(text: str, value: str) -> None:
    assert quantity(text) == Decimal(value)


def _pod(cpu: str, memory: str, phase: str = "Running", deleting: bool = False) -> dict:
    meta = {"name": "p", **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": meta, "status": {"phase": phase}, "spec": {"containers": [
        {"resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu}}}]}}


def test_quota_usage_counts_live_pods_only() -> None:
    hard = {"pods": "20", "requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8"}
    pods = [_pod("250m", "512Mi"), _pod("1", "1Gi"), _pod("2", "1Gi", phase="Succeeded"), _pod("2", "1Gi", deleting=True)]
    assert pod_usage(pods, hard) == {
        "pods": "2", "requests.cpu": "1250m", "requests.memory": str(1536 * 2**20), "limits.cpu": "1250m",
    }


def test_a_missing_binary_is_skipped_with_the_recorded_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "TOOLCHAIN_DIR", tmp_path)
    (tmp_path / "status").mkdir()
    (tmp_path / "status" / "pulumi-resource-kubernetes.json").write_text(json.dumps({
        "name": "pulumi-resource-kubernetes", "state": "unavailable", "version": "v4.34.2",
        "detail": "Go module download refused: 403 Forbidden"}))
    reason = toolchain.missing_reason("pulumi-resource-kubernetes", "etcd")
    assert reason is not None
    assert "pulumi-resource-kubernetes v4.34.2 is unavailable: Go module download refused: 403 Forbidden" in reason
    assert "etcd is not built (run tools/build.sh" in reason
    (tmp_path / "bin").mkdir()
    for name in ("etcd", "pulumi-resource-kubernetes"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
        (tmp_path / "bin" / name).chmod(0o755)
    assert toolchain.missing_reason("pulumi-resource-kubernetes", "etcd") is None


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain on PATH: tools/build.sh then marks every "
                    "piece unavailable without looking at the mirror")
def test_build_without_the_language_host_source_is_a_skip_reason_not_a_failure(tmp_path: Path) -> None:
    # No Go compile happens: the missing source is found before `go build` (go.sum is committed).
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([str(root / "tools" / "build.sh"), "pulumi"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TOOLCHAIN_DIR": str(tmp_path), "UPSTREAM_DIR": str(tmp_path / "none")})
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads((tmp_path / "status" / "pulumi.json").read_text())
    assert status["state"] == "unavailable"
    assert str(tmp_path / "none" / "pulumi" / "v3.259.0") in status["detail"]
    assert not (tmp_path / "bin" / "pulumi").exists()



def test_node_skip_reason_names_each_missing_piece(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.e2e import node

    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setattr(node, "CNI_BIN_DIRS", (tmp_path / "cni",))
    monkeypatch.setattr(toolchain, "TOOLCHAIN_DIR", tmp_path / "toolchain")
    reason = node.node_missing_reason()
    assert reason is not None
    assert "not on PATH: containerd, runc, ctr, ip, mount, umount, go" in reason
    assert f"CNI plugins bridge, host-local, loopback not found in {tmp_path / 'cni'}" in reason
    assert "kubelet is not built (run tools/build.sh" in reason


def test_node_cgroup_teardown_removes_the_tree_depth_first(tmp_path: Path) -> None:
    from tests.e2e import node

    leaf = tmp_path / "root" / "kubepods" / "burstable" / "pod1"
    leaf.mkdir(parents=True)
    (tmp_path / "root" / "kubepods" / "besteffort").mkdir()
    assert node._remove_cgroup_tree(tmp_path / "root") == []
    assert not (tmp_path / "root").exists()
    busy = tmp_path / "busy" / "child"
    busy.mkdir(parents=True)
    (busy / "tasks").write_text("1\n")  # a plain directory with a file stands in for a cgroup still in use
    left = node._remove_cgroup_tree(tmp_path / "busy")
    assert [entry.split(":")[0] for entry in left] == [str(busy), str(tmp_path / "busy")]


def test_a_stand_in_loop_waits_its_interval_between_steps_and_stops_at_once() -> None:
    """The stand-ins' pause is a wait on the stop event: leaving a FakeControllerManager does not
    wait out its interval (the e2e tests enter and leave one for almost every stack)."""
    steps, stepped = [], threading.Event()
    loop = _Loop("test-loop", lambda: (steps.append(time.monotonic()), stepped.set()), interval=30)
    loop.start()
    assert stepped.wait(10), "the loop never stepped"
    started = time.monotonic()
    loop.stop()
    assert not loop.is_alive()
    assert time.monotonic() - started < 5, "stop waited out the interval"
    assert len(steps) == 1, "a second step came before the interval was over"


class _HangingWatchServer(BaseHTTPRequestHandler):
    """Just enough of an API server for FakeKubelet: discovery, the Node it registers, an empty
    Pod list, and a Pod watch that sends its headers and then nothing (no pod changes)."""

    watch_opened = threading.Event()

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/api/v1":
            self._json({"resources": [{"name": "nodes", "kind": "Node", "namespaced": False},
                                      {"name": "pods", "kind": "Pod", "namespaced": True}]})
        elif "watch=1" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            type(self).watch_opened.set()
            time.sleep(30)  # an idle watch: no event until the server's timeout
        else:
            self._json({"items": [], "metadata": {"resourceVersion": "1"}})

    def do_POST(self) -> None:
        self._json({})

    def do_PATCH(self) -> None:
        self._json({})

    def log_message(self, *args: object) -> None:
        pass


def test_the_stand_in_kubelet_ends_its_open_watch_on_exit() -> None:
    """Leaving a FakeKubelet while its Pod watch waits for an event returns at once and leaves no
    thread reading: a watch left open made every teardown wait 10 s for the loop and 15 s for
    kube-apiserver, which does not stop while a watch is open."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HangingWatchServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kube = Kube(f"http://127.0.0.1:{server.server_port}", "", None, None)
        kubelet = FakeKubelet(kube)
        with kubelet:
            assert _HangingWatchServer.watch_opened.wait(10), "the kubelet never opened its Pod watch"
            started = time.monotonic()
        assert time.monotonic() - started < 3, "leaving the kubelet waited for its watch"
        assert not kubelet._loop.is_alive(), "the watch loop is still reading"
    finally:
        server.shutdown()
