"""Container images for the e2e node, built here, reproducibly, without a registry.

One static Go program (tools/sandbox-image, standard library only) is the whole image: an
HTTP server on the template's port (8888) with a readiness endpoint and a report of what
the hardened template promises, seen from inside the container. It is packed into OCI
image archives by hand: one uncompressed layer, every tar header fixed (mtime, owner,
order), JSON with sorted keys, so the same binary gives the same digests. The Go build
itself is reproducible (`-trimpath`, no build ID, no VCS stamp, CGO off), so the same
source and Go version give the same digests too. `ctr -n k8s.io images import` loads an
archive into containerd, where the kubelet finds it (no pull: tags are not `latest`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .toolchain import ROOT

SOURCE = ROOT / "tools" / "sandbox-image"
REGISTRY = "e2e.sandbox-infra.dev"
# A fixed timestamp for every file and the image config (SOURCE_DATE_EPOCH style).
EPOCH = 0
NONROOT = "65532:65532"


@dataclass(frozen=True)
class Image:
    name: str
    """Full reference, e.g. e2e.sandbox-infra.dev/sandbox:v1."""
    args: tuple[str, ...]
    user: str
    """The image's USER: "" (root) for the image a runAsNonRoot template must refuse."""


SANDBOX = Image(f"{REGISTRY}/sandbox:v1", ("/sandbox", "serve"), NONROOT)
ROOT_USER = Image(f"{REGISTRY}/sandbox-root:v1", ("/sandbox", "serve"), "")
# The pod's infra container, as registry.k8s.io/pause: its user is 65535 as upstream's.
PAUSE = Image(f"{REGISTRY}/pause:v1", ("/sandbox", "pause"), "65535:65535")
IMAGES = (SANDBOX, ROOT_USER, PAUSE)


def build_binary(out: Path) -> Path:
    """`go build` of tools/sandbox-image, byte-for-byte reproducible for one Go version."""
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64", "GOTOOLCHAIN": "local",
           "GOFLAGS": "-mod=readonly"}
    subprocess.run(["go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", str(out), "."],
                   cwd=SOURCE, env=env, check=True, capture_output=True, timeout=600)
    return out


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = EPOCH, 0, 0, "", "", mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _tar(members: list[tuple[str, bytes | None, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in members:
            _tar_member(tar, name, data, mode)
    return buffer.getvalue()


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(image: Image, binary: bytes) -> tuple[bytes, str]:
    """The OCI image layout of `image` as a tar archive, and its manifest digest (the image ID,
    which the kubelet reports as a container's imageID, is the config's: `image_id`)."""
    layer = _tar([("sandbox", binary, 0o755), ("tmp/", None, 0o1777)])
    config = _json({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(image.args), "User": image.user, "WorkingDir": "/",
                   "Env": ["PATH=/"], "ExposedPorts": {"8888/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/e2e/images.py"}],
    })
    manifest = _json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer),
                    "size": len(layer)}],
    })
    tag = image.name.rsplit(":", 1)[1]
    index = _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
        # containerd names the imported image after the first; other tools read the second.
        "annotations": {"io.containerd.image.name": image.name, "org.opencontainers.image.ref.name": tag},
    }]})
    blobs = sorted({_digest(b).split(":")[1]: b for b in (layer, config, manifest)}.items())
    archive = _tar([
        ("oci-layout", _json({"imageLayoutVersion": "1.0.0"}), 0o644),
        ("index.json", index, 0o644),
        ("blobs/", None, 0o755), ("blobs/sha256/", None, 0o755),
        *((f"blobs/sha256/{hexdigest}", blob, 0o644) for hexdigest, blob in blobs),
    ])
    return archive, _digest(manifest)


def image_id(archive: bytes, manifest_digest: str) -> str:
    """The config digest of the image in `archive`: what containerd and the kubelet call its ID."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.loads(tar.extractfile(f"blobs/sha256/{manifest_digest.split(':')[1]}").read())
    return manifest["config"]["digest"]


def build_images(workdir: Path) -> dict[Image, tuple[Path, str, str]]:
    """Build the program and write one archive per image: {image: (archive, manifest digest, image ID)}."""
    binary = build_binary(workdir / "sandbox").read_bytes()
    built = {}
    for image in IMAGES:
        archive, digest = oci_archive(image, binary)
        path = workdir / f"{image.name.split('/')[-1].replace(':', '_')}.oci.tar"
        path.write_bytes(archive)
        built[image] = (path, digest, image_id(archive, digest))
    return built


def import_image(ctr: list[str], archive: Path) -> None:
    """`ctr -n k8s.io images import` (the CRI's namespace, where the kubelet looks)."""
    subprocess.run([*ctr, "-n", "k8s.io", "images", "import", str(archive)],
                   check=True, capture_output=True, timeout=120)
