"""Every shipped stack through the real Pulumi engine, as its config stands:

- `pulumi up` on a fresh live control plane of its own, every object admitted (only
  `cluster.waitForWorkloads` is changed: no kubelet runs pods here); KubeVirt objects are
  validated by KubeVirt v1.9.0's real CRDs and read back exactly as the engine sent them;
- the engine's output equals the offline render: `pulumi up` with
  `cluster.provider.renderYamlToDirectory` (no cluster, no kubeconfig at all) writes the
  manifests the provider would apply, and a semantic comparison with `render` of the
  same stack config finds nothing beyond the named normalisations below.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
import yaml

from components.manifests.common import Manifest
from components.specs.secrets import REDACTED

from .helpers import SHIPPED_STACKS, is_kubevirt
from .pulumi_project import kubevirt_stored_as_sent, make_project, stack_on_fresh_plane
from .test_api_server import contains


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_shipped_stack_goes_up_and_every_object_is_admitted(stack: str, tmp_path: Path) -> None:
    with stack_on_fresh_plane(tmp_path, stack) as project:
        result = project.pulumi("up", "--yes", "--skip-preview", stack=stack)
        print(result.stdout[-1500:])
        manifests = project.rendered(stack)
        for manifest in manifests:
            meta = manifest["metadata"]
            stored = project.kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
            for field in ("spec", "data", "rules", "roleRef", "subjects"):
                if field in manifest and not (manifest["kind"] == "Secret" and field == "data"):
                    assert contains(stored[field], manifest[field]), f"{stack}: {manifest['kind']} {meta['name']} .{field}"
        export = json.loads(project.pulumi("stack", "export", stack=stack).stdout)
        kubevirt = kubevirt_stored_as_sent(project.kube, export)
        print(f"{stack}: {len(kubevirt)} KubeVirt objects stored as sent: {sorted(m['kind'] for m in kubevirt)}")
        assert len(kubevirt) == sum(map(is_kubevirt, manifests))


# --- engine output == offline render ------------------------------------------------------

Key = tuple[str, str, str, str]


def key(manifest: Manifest) -> Key:
    meta = manifest["metadata"]
    return manifest["apiVersion"], manifest["kind"], meta.get("namespace", ""), meta["name"]


def normalise(manifest: Manifest, *, engine: bool) -> Manifest:
    """The provider normalisations that are not differences, each named."""
    manifest = copy.deepcopy(manifest)
    if manifest["kind"] == "Secret":
        # 1. A Secret's `stringData` is written as base64 `data` by the provider; the offline
        #    render redacts secret values (they come from Pulumi secrets), so only the keys
        #    are compared, and the engine's values are checked to be real (not the placeholder).
        data = manifest.pop("stringData", None) or {}
        data = {**data, **manifest.pop("data", {})}
        if engine:
            for name, value in data.items():
                assert REDACTED not in base64.b64decode(value).decode(), f"Secret {name}: placeholder reached the cluster"
        manifest["data"] = dict.fromkeys(sorted(data), "<value>")
    for field in OMITTED_WHEN_FALSE.get(manifest["kind"], ()):
        if manifest.get(field) is False:
            del manifest[field]
    return manifest


# 2. Plain (non-pointer) bool fields with `omitempty` in the Kubernetes Go types are left out
#    when false: the provider writes built-in kinds through those types.
OMITTED_WHEN_FALSE = {"PriorityClass": ("globalDefault",)}


def engine_rendered(directory: Path) -> dict[Key, Manifest]:
    """pulumi-kubernetes writes CRDs to 0-crd/ and everything else to 1-manifest/."""
    found: dict[Key, Manifest] = {}
    for path in sorted(directory.rglob("*.yaml")):
        for manifest in yaml.safe_load_all(path.read_text()):
            if manifest:
                assert key(manifest) not in found, f"{key(manifest)} written twice"
                found[key(manifest)] = manifest
    return found


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_engine_output_equals_the_offline_render(stack: str, tmp_path: Path) -> None:
    # No control plane and no kubeconfig: a render-only run must not need the cluster's
    # credentials (staging and prod name a kubeconfig context that does not exist here).
    project = make_project(tmp_path / "project", None, (stack,))
    out = tmp_path / "rendered"
    project.config(stack, "cluster.provider.renderYamlToDirectory", str(out))
    project.pulumi("up", "--yes", "--skip-preview", stack=stack)

    engine = {k: normalise(m, engine=True) for k, m in engine_rendered(out).items()}
    offline = {key(m): normalise(m, engine=False) for m in project.rendered(stack)}
    assert sorted(engine) == sorted(offline), (
        f"objects only from the engine: {sorted(set(engine) - set(offline))}; "
        f"only offline: {sorted(set(offline) - set(engine))}")
    different = [k for k in offline if engine[k] != offline[k]]
    for k in different:
        print(f"--- {k}\noffline:\n{yaml.safe_dump(offline[k])}\nengine:\n{yaml.safe_dump(engine[k])}")
    assert not different, f"{stack}: {len(different)} of {len(offline)} objects differ: {different}"
