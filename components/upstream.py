"""The one place that reads pinned upstream manifests.

Each file is taken from a local mirror directory when one is present (tests,
air-gapped machines) or downloaded from its pinned upstream URL and cached on
disk. Either way its sha256 must match the digest pinned here; a mismatch is a
hard error naming the file, so a tampered or truncated manifest never reaches a
cluster.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .inputs import decode, load_documents

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_UPSTREAM_DIR = PROJECT_ROOT.parent / "shared" / "upstream"

AGENT_SANDBOX_URL = "https://raw.githubusercontent.com/kubernetes-sigs/agent-sandbox/{tag}/k8s/{path}"
KUBEVIRT_RELEASE_URL = "https://github.com/kubevirt/kubevirt/releases/download/{tag}/{asset}"

# sha256 of every agent-sandbox file we install, per release tag (`k8s/` folder of the tag).
AGENT_SANDBOX_DIGESTS: dict[str, dict[str, str]] = {
    "v0.4.6": {
        "controller.yaml": "cb679d18e144b23d2445f58280fbaca1e4263efee3bb3e618657a632bea951b6",
        "crds/agents.x-k8s.io_sandboxes.yaml": "7fa5718c53a50c8a54e5573e9d2a2d5106663c2a899a5968585edd99659fe928",
        "crds/extensions.agents.x-k8s.io_sandboxclaims.yaml": "83c6f0cb2602ad057127990c0876b936929e96605d4adfd2a63bf2a90a4e7718",
        "crds/extensions.agents.x-k8s.io_sandboxtemplates.yaml": "421ef5273c3f3ccfc4caaacec7b53eeeae1734208cc1005a94fcdd4b0a8beec8",
        "crds/extensions.agents.x-k8s.io_sandboxwarmpools.yaml": "6d7b2e2109c71165e685ff6d3267968b4ddccdbe6e5311378fc06f99205e11ed",
        "extensions-rbac.generated.yaml": "1d4da3c5fdf3b829b9ea0a0cae5f605f45a158b7367c4b54f1023bbe0e4b33c6",
        "extensions.controller.yaml": "5dd52fe403d2efeb3c52a2927a051bae1039b4484fed218390c7cc319d9a2da6",
        "extensions.yaml": "40cbfd3e97c768d78f7de9ec9d399ad3389801ff96354ef724c4ccc3a287352d",
        "rbac.generated.yaml": "e76e6276dd359d39abf7c84ac1190c29cf55496fec74e958f636a48d3b5ca5e5",
    },
    "v0.5.6": {
        "controller.yaml": "ecee13858bcb38d384226db70fa7f751b4bca29ae650b3f21d28e5ce779b1e3f",
        "crds/agents.x-k8s.io_sandboxes.yaml": "9e60ea33d214c74588f3d07b7f606121fe0544df05d0e7310ceec1267c5887f4",
        "crds/extensions.agents.x-k8s.io_sandboxclaims.yaml": "6d8a4cc45c3c5a3d3a2f2013a67035726940d4e1d24177e8e119716b883cdd35",
        "crds/extensions.agents.x-k8s.io_sandboxtemplates.yaml": "af22468bd579fd6779fbe93cf6516dec7b08606d4fb225ed910890b27d0d6819",
        "crds/extensions.agents.x-k8s.io_sandboxwarmpools.yaml": "cd217c623532e81c57cac24c3eccd02b23b6e8886bb50a609d61309cca548258",
        "extensions-rbac.generated.yaml": "c40a97bf17e3c1a8d13dd0d549142c97bb46ef6f20926330fc70d475f66ea66a",
        "extensions.controller.yaml": "0519b62e9aa3e02ffae89847c217af2cffd807a7eebf0349e1775483ac9f9408",
        "extensions.yaml": "40cbfd3e97c768d78f7de9ec9d399ad3389801ff96354ef724c4ccc3a287352d",
        "rbac.generated.yaml": "0d559e2b96c913aca5fc80252b7ab68160b1874f4fb35acf6decde0ac766d111",
    },
}


class UpstreamError(ConfigError):
    """A pinned upstream file could not be had, or did not match its digest."""


def upstream_dir() -> Path:
    """The local mirror: `UPSTREAM_DIR`, else `../shared/upstream` beside the project."""
    return Path(os.environ.get("UPSTREAM_DIR") or DEFAULT_UPSTREAM_DIR)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sandbox-infra" / "upstream"


@dataclass(frozen=True)
class PinnedFile:
    """One upstream file: where it lives in the mirror, where upstream serves it, its digest."""

    mirror_path: str
    url: str
    sha256: str | None
    """None: no digest is known (e.g. a release asset we have no pin for). Such a file
    is still used, but a download of it is reported in `UpstreamLoader.warnings`."""


def agent_sandbox_file(version: str, path: str) -> PinnedFile:
    digests = AGENT_SANDBOX_DIGESTS.get(version)
    if digests is None or path not in digests:
        raise UpstreamError(f"agent-sandbox {version}: no pinned digest for k8s/{path}")
    return PinnedFile(
        mirror_path=f"agent-sandbox/{version}/k8s/{path}",
        url=AGENT_SANDBOX_URL.format(tag=version, path=path),
        sha256=digests[path],
    )


def kubevirt_operator_file(version: str, url: str | None = None, sha256: str | None = None) -> PinnedFile:
    """The KubeVirt operator release manifest. We know no digest of the real release
    asset (the mirror holds a faithful fixture, not the asset), so the pin comes from
    stack config (`kubevirt.operatorManifest.sha256`) or is absent."""
    return PinnedFile(
        mirror_path=f"kubevirt/{version}/kubevirt-operator.yaml",
        url=url or KUBEVIRT_RELEASE_URL.format(tag=version, asset="kubevirt-operator.yaml"),
        sha256=sha256,
    )


@dataclass
class UpstreamLoader:
    """Fetches pinned files: mirror first, then the on-disk cache, then the network."""

    mirror: Path | None = field(default_factory=upstream_dir)
    cache: Path = field(default_factory=cache_dir)
    allow_download: bool = True
    warnings: list[str] = field(default_factory=list)
    """Problems worth a user's attention that do not stop the run (unpinned downloads)."""
    # Verified contents per pinned file: a pinned file cannot change, so each is read and
    # hashed once per loader (re-reading and re-hashing 1 MB CRDs was most of a warm render).
    _verified: dict[PinnedFile, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def read_bytes(self, pinned: PinnedFile) -> bytes:
        if pinned not in self._verified:
            self._verified[pinned] = self._fetch(pinned)
        return self._verified[pinned]

    def _fetch(self, pinned: PinnedFile) -> bytes:
        if self.mirror is not None and (self.mirror / pinned.mirror_path).is_file():
            source = self.mirror / pinned.mirror_path
            return _verified(source.read_bytes(), pinned, str(source))
        if pinned.sha256 is None:
            self._warn(
                f"{pinned.url}: remote manifest is not pinned by a sha256 digest, so a changed or tampered "
                "file would go unnoticed; pin it in stack config or mirror it locally (UPSTREAM_DIR)"
            )
        # Unpinned files are cached under a name derived from their URL, never from content.
        cached = self.cache / (pinned.sha256 or "url-" + re.sub(r"[^A-Za-z0-9._-]", "_", pinned.url))
        if cached.is_file():
            return _verified(cached.read_bytes(), pinned, str(cached))
        if not pinned.url:
            raise UpstreamError(f"{pinned.mirror_path}: not in the mirror {self.mirror} nor the cache, and upstream "
                                "publishes no such file (it is rebuilt from the tag); set UPSTREAM_DIR to a mirror")
        if not self.allow_download:
            raise UpstreamError(
                f"{pinned.mirror_path}: not in the mirror {self.mirror} nor the cache, and downloads are off; "
                "set UPSTREAM_DIR to a mirror of the pinned files"
            )
        data = _verified(_download(pinned.url), pinned, pinned.url)
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.cache, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, cached)  # atomic: a concurrent reader never sees half a file
        return data

    def read_documents(self, pinned: PinnedFile) -> list[dict[str, Any]]:
        data = self.read_bytes(pinned)
        documents = _parse_cached(data, pinned.mirror_path, pinned.sha256 is not None, self.cache)
        for index, document in enumerate(documents):
            if not isinstance(document, dict) or not isinstance(document.get("kind"), str) \
                    or not isinstance(document.get("metadata"), dict):
                raise UpstreamError(f"{pinned.url}: document {index + 1} is not a Kubernetes object; "
                                    "is this the right file? (pin it by sha256, or mirror it locally: UPSTREAM_DIR)")
        return documents

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


# Parsed upstream files are kept as JSON beside the download cache: a new process (every
# `render`, every base of a `diff`) then reads the 1.3 MB of CRDs and operator manifest in
# milliseconds instead of parsing YAML again. Named by the sha256 of the very bytes that
# were parsed (and passed the input checks), and by this format's version.
PARSED_FORMAT = "parsed-v1"


@lru_cache(maxsize=64)
def _parse_cached(data: bytes, label: str, digest_verified: bool, cache: Path) -> list[dict[str, Any]]:
    """The same bytes always parse the same: once per process, and once per machine (JSON)."""
    stored = cache / PARSED_FORMAT / f"{hashlib.sha256(data).hexdigest()}.json"
    try:
        documents = json.loads(stored.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        documents = None
    if not isinstance(documents, list):
        # Parsing the 8,000-line CRDs and the 500 kB KubeVirt operator manifest dominated render
        # time. Digest-verified files take libyaml's loader (~7x faster), anything else the
        # guarded one (see components/inputs.py).
        documents = [doc.data for doc in load_documents(decode(data, label), label, digest_verified) if doc.data]
        _store(stored, documents)
    # The parsed manifests (hundreds of thousands of dicts and lists) live as long as the
    # process; freezing them keeps every full garbage collection from walking them again,
    # which made rendering a large fleet super-linear.
    gc.freeze()
    return documents


def _store(stored: Path, documents: list[dict[str, Any]]) -> None:
    with contextlib.suppress(OSError, TypeError, ValueError):  # a read-only cache, or a value JSON cannot hold
        text = json.dumps(documents, separators=(",", ":"))
        if json.loads(text) == documents:  # only what reads back exactly as parsed
            stored.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=stored.parent, delete=False) as tmp:
                tmp.write(text)
            os.replace(tmp.name, stored)  # atomic: a concurrent reader sees all of it or none


def _verified(data: bytes, pinned: PinnedFile, source: str) -> bytes:
    if pinned.sha256 is None:
        return data
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        raise UpstreamError(
            f"{source}: sha256 mismatch for pinned file {pinned.mirror_path}: "
            f"expected {pinned.sha256}, got {digest}; refusing to use it"
        )
    return data


def _download(url: str) -> bytes:
    try:
        import urllib.request  # only when a pinned file must be downloaded: keeps imports light

        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()
    except (OSError, ValueError) as err:  # URLError, timeouts, refused connections; ValueError: a malformed URL
        raise UpstreamError(f"{url}: download failed ({err}); set UPSTREAM_DIR to a local mirror") from None
