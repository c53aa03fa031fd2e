"""Pinned upstream manifests: mirror, download + cache, digest verification."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import components.upstream as upstream_module
from components.upstream import AGENT_SANDBOX_DIGESTS, UpstreamError, UpstreamLoader, agent_sandbox_file


@pytest.mark.parametrize("version", sorted(AGENT_SANDBOX_DIGESTS))
def test_mirror_matches_every_pinned_digest(upstream: Path, version: str) -> None:
    loader = UpstreamLoader(mirror=upstream, allow_download=False)
    for path in AGENT_SANDBOX_DIGESTS[version]:
        data = loader.read_bytes(agent_sandbox_file(version, path))
        assert hashlib.sha256(data).hexdigest() == AGENT_SANDBOX_DIGESTS[version][path]


def test_tampered_mirror_file_is_a_hard_error_naming_the_file(upstream: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(upstream / "agent-sandbox", mirror / "agent-sandbox")
    target = mirror / "agent-sandbox/v0.5.6/k8s/controller.yaml"
    target.write_text(target.read_text().replace("replicas: 1", "replicas: 2"))
    loader = UpstreamLoader(mirror=mirror, cache=tmp_path / "cache", allow_download=False)
    with pytest.raises(UpstreamError, match=r"sha256 mismatch for pinned file agent-sandbox/v0\.5\.6/k8s/controller\.yaml"):
        loader.read_bytes(agent_sandbox_file("v0.5.6", "controller.yaml"))


def _serve(monkeypatch: pytest.MonkeyPatch, body: bytes) -> list[str]:
    fetched: list[str] = []

    def download(url: str) -> bytes:
        fetched.append(url)
        return body

    monkeypatch.setattr(upstream_module, "_download", download)
    return fetched


def test_download_is_verified_then_cached(upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = agent_sandbox_file("v0.4.6", "extensions.yaml")
    body = (upstream / pinned.mirror_path).read_bytes()
    fetched = _serve(monkeypatch, body)
    loader = UpstreamLoader(mirror=tmp_path / "no-mirror", cache=tmp_path / "cache")
    assert loader.read_bytes(pinned) == body
    assert loader.read_bytes(pinned) == body  # the second read comes from the cache
    assert fetched == ["https://raw.githubusercontent.com/kubernetes-sigs/agent-sandbox/v0.4.6/k8s/extensions.yaml"]
    assert (tmp_path / "cache" / pinned.sha256).read_bytes() == body


def test_tampered_download_is_rejected_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = agent_sandbox_file("v0.5.6", "controller.yaml")
    _serve(monkeypatch, b"kind: Namespace\n")
    loader = UpstreamLoader(mirror=None, cache=tmp_path / "cache")
    with pytest.raises(UpstreamError, match=r"raw\.githubusercontent\.com/.*/v0\.5\.6/k8s/controller\.yaml: sha256 mismatch"):
        loader.read_bytes(pinned)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_no_mirror_and_no_downloads_says_what_to_do(tmp_path: Path) -> None:
    loader = UpstreamLoader(mirror=tmp_path, cache=tmp_path / "cache", allow_download=False)
    with pytest.raises(UpstreamError, match="set UPSTREAM_DIR"):
        loader.read_bytes(agent_sandbox_file("v0.5.6", "extensions.yaml"))


def test_unpinned_file_is_refused() -> None:
    with pytest.raises(UpstreamError, match=r"no pinned digest for k8s/kustomization\.yaml"):
        agent_sandbox_file("v0.5.6", "kustomization.yaml")


def test_upstream_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UPSTREAM_DIR", str(tmp_path))
    assert upstream_module.upstream_dir() == tmp_path
    monkeypatch.delenv("UPSTREAM_DIR")
    assert upstream_module.upstream_dir() == upstream_module.PROJECT_ROOT.parent / "shared" / "upstream"


def test_parsed_files_are_kept_as_json_named_by_their_bytes(upstream: Path, tmp_path: Path) -> None:
    pinned = agent_sandbox_file("v0.5.6", "crds/agents.x-k8s.io_sandboxes.yaml")
    parsed = UpstreamLoader(mirror=upstream, cache=tmp_path, allow_download=False).read_documents(pinned)
    stored = tmp_path / upstream_module.PARSED_FORMAT / f"{pinned.sha256}.json"
    assert json.loads(stored.read_text()) == parsed  # written on the first parse, exactly as parsed
    upstream_module._parse_cached.cache_clear()  # as a new process would start
    assert UpstreamLoader(mirror=upstream, cache=tmp_path, allow_download=False).read_documents(pinned) == parsed


def test_a_damaged_parsed_file_is_parsed_again(upstream: Path, tmp_path: Path) -> None:
    pinned = agent_sandbox_file("v0.5.6", "controller.yaml")
    stored = tmp_path / upstream_module.PARSED_FORMAT / f"{pinned.sha256}.json"
    stored.parent.mkdir(parents=True)
    stored.write_text('[{"kind": "Deploym')  # cut short, e.g. a full disk
    upstream_module._parse_cached.cache_clear()
    documents = UpstreamLoader(mirror=upstream, cache=tmp_path, allow_download=False).read_documents(pinned)
    assert any(d["kind"] == "Deployment" for d in documents)
    assert json.loads(stored.read_text()) == documents  # and stored whole again
