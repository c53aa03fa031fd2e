"""Every shipped stack through the real Pulumi engine, as its config stands:

- `pulumi up` on a fresh live control plane of its own, every object admitted (only
  `cluster.waitForWorkloads` is changed: no kubelet runs pods here); KubeVirt objects are
  validated by KubeVirt v1.9.0's real CRDs and read back exactly as the engine sent them.
  dev's is the first `up` of test_pulumi_engine.py, where the rest of its life follows;
- the engine's output equals the offline render: `pulumi up` with
  `cluster.provider.renderYamlToDirectory` (no cluster, no kubeconfig at all) writes the
  manifests the provider would apply, and a semantic comparison with `render` of the
  same stack config finds nothing beyond the named normalisations below;
- the policy pack, installed on its own (its folder and requirements only, as another project
  would use it), passes every shipped stack in that same `up` (a mandatory violation would fail
  it), and fails a deliberately insecure stack's `preview`. What the pack judges is each
  resource's inputs, which are the same whether the provider applies or renders them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sandbox_policy.crossguard import PACK_NAME

from components.manifests.common import Manifest
from components.specs.secrets import REDACTED

from .helpers import SHIPPED_STACKS, require
from .pulumi_project import (
    FIXTURES,
    PULUMI,
    Project,
    assert_every_kubevirt_object_stored_as_sent,
    assert_every_object_stored,
    make_project,
    stack_on_fresh_plane,
    standalone_pack,
)

# dev goes up in test_pulumi_engine.py, on its module's plane, as the first step of its whole life.
LIVE_STACKS = tuple(stack for stack in SHIPPED_STACKS if stack != "dev")


@dataclass
class WentUp:
    project: Project
    output: str
    export: dict
    plane: contextlib.ExitStack  # stops the stack's plane


@pytest.fixture(scope="module")
def pack_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Path]]:
    """The standalone pack (a fresh virtualenv, pip install), built in the background."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(standalone_pack, tmp_path_factory.mktemp("policy-pack"))


@pytest.fixture(scope="module")
def went_up(tmp_path_factory: pytest.TempPathFactory, pack_built: Future[Path]) -> Iterator[dict[str, Future[WentUp]]]:
    """Every shipped stack's `pulumi up` but dev's, each on its fresh plane, all started at once (they
    share nothing; one engine run mostly waits on its provider and API server). Each test waits for its
    own stack only, so one stack's failure fails its test alone, and stops its plane when done.
    (`pack_built` starts first: the pack's virtualenv builds while the stacks go up.)"""
    require("etcd", "kube-apiserver", *PULUMI)
    planes, lock = contextlib.ExitStack(), threading.Lock()
    workdirs = {stack: tmp_path_factory.mktemp(stack) for stack in LIVE_STACKS}

    def up(stack: str) -> WentUp:
        plane = contextlib.ExitStack()
        with lock:
            planes.push(plane)  # stopped at module end at the latest, also when this stack's up fails
        project = plane.enter_context(stack_on_fresh_plane(workdirs[stack], stack))
        result = project.pulumi("up", "--yes", "--skip-preview", stack=stack)
        export = json.loads(project.pulumi("stack", "export", stack=stack).stdout)
        return WentUp(project, result.stdout, export, plane)

    with planes, ThreadPoolExecutor(max_workers=len(LIVE_STACKS)) as pool:
        yield {stack: pool.submit(up, stack) for stack in LIVE_STACKS}


@pytest.mark.parametrize("stack", LIVE_STACKS)
def test_every_shipped_stack_goes_up_and_every_object_is_admitted(stack: str, went_up: dict[str, Future[WentUp]]) -> None:
    done = went_up[stack].result()
    with done.plane:
        print(done.output[-1500:])
        assert_every_object_stored(done.project, stack)
        assert_every_kubevirt_object_stored_as_sent(done.project, stack, done.export)


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


@dataclass
class Rendered:
    project: Project
    directory: Path
    output: str


@pytest.fixture(scope="module")
def engine_renders(tmp_path_factory: pytest.TempPathFactory,
                   pack_built: Future[Path]) -> Iterator[dict[str, Future[Rendered]]]:
    """Every shipped stack rendered by the engine (`renderYamlToDirectory`) with the standalone
    policy pack on, all at once."""
    require(*PULUMI)
    workdirs = {stack: tmp_path_factory.mktemp(f"render-{stack}") for stack in SHIPPED_STACKS}

    def engine_render(stack: str) -> Rendered:
        # No control plane and no kubeconfig: a render-only run must not need the cluster's
        # credentials (staging and prod name a kubeconfig context that does not exist here).
        project = make_project(workdirs[stack] / "project", None, (stack,))
        out = workdirs[stack] / "rendered"
        project.config(stack, "cluster.provider.renderYamlToDirectory", str(out))
        result = project.with_pack("up", stack, pack_built.result(), "--yes", "--skip-preview")
        return Rendered(project, out, result.stdout)

    with ThreadPoolExecutor(max_workers=len(SHIPPED_STACKS)) as pool:
        yield {stack: pool.submit(engine_render, stack) for stack in SHIPPED_STACKS}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_engine_output_equals_the_offline_render(stack: str, engine_renders: dict[str, Future[Rendered]]) -> None:
    rendered = engine_renders[stack].result()
    engine = {k: normalise(m, engine=True) for k, m in engine_rendered(rendered.directory).items()}
    offline = {key(m): normalise(m, engine=False) for m in rendered.project.rendered(stack)}
    assert sorted(engine) == sorted(offline), (
        f"objects only from the engine: {sorted(set(engine) - set(offline))}; "
        f"only offline: {sorted(set(offline) - set(engine))}")
    different = [k for k in offline if engine[k] != offline[k]]
    for k in different:
        print(f"--- {k}\noffline:\n{yaml.safe_dump(offline[k])}\nengine:\n{yaml.safe_dump(engine[k])}")
    assert not different, f"{stack}: {len(different)} of {len(offline)} objects differ: {different}"


# --- the policy pack, installed on its own ---------------------------------------------------

@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_standalone_policy_pack_passes_on_shipped_stacks(stack: str, engine_renders: dict[str, Future[Rendered]]) -> None:
    output = engine_renders[stack].result().output  # the `up` failed the test if the pack refused it
    assert re.search(rf"^\s*✅ {PACK_NAME}@v\S+ \(local: ", output, re.M), f"the pack did not run:\n{output[-3000:]}"


@pytest.fixture(scope="module")
def insecure_preview(tmp_path_factory: pytest.TempPathFactory, pack_built: Future[Path]) -> subprocess.CompletedProcess:
    project = make_project(tmp_path_factory.mktemp("insecure") / "project", None, ("insecure",),
                           extra_stack_files=(FIXTURES / "Pulumi.insecure.yaml",))
    project.config("insecure", "cluster.provider.renderYamlToDirectory", str(project.path / "rendered"))
    return project.with_pack("preview", "insecure", pack_built.result(), check=False)


def test_standalone_policy_pack_fails_an_insecure_stack(insecure_preview: subprocess.CompletedProcess) -> None:
    output = insecure_preview.stdout + insecure_preview.stderr
    print(output[-3000:])
    assert insecure_preview.returncode != 0
    assert "[mandatory]" in output and "sandbox-image-source" in output, \
        "the preview should fail on a mandatory policy violation, not on anything else"
