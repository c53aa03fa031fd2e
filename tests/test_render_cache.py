"""Renders share unchanged upstream subtrees with the loader's cache; they must never edit it."""

from __future__ import annotations

import copy
import gc

import pytest

from components.manifests.kubevirt import PRIVILEGED_EXCEPTION
from components.manifests.stack import render_stack
from components.specs import spec_from_config
from components.upstream import UpstreamError, UpstreamLoader, agent_sandbox_file, kubevirt_operator_file, upstream_dir

from .kubevirt_support import engine_spec, offline_loader, vm_stack_config


def _config(name: str, replicas: int) -> dict:
    return {"cluster": {"name": name, "environment": "dev"}, "agentSandbox": {"controller": {"replicas": replicas}}}


def test_renders_do_not_leak_into_each_other_or_the_cache(tmp_path) -> None:
    if not (upstream_dir() / "agent-sandbox").is_dir():
        pytest.skip(f"pinned upstream mirror not found at {upstream_dir()} (set UPSTREAM_DIR to ../shared/upstream)")
    loader = UpstreamLoader(mirror=upstream_dir(), cache=tmp_path, allow_download=False)
    pristine = copy.deepcopy(loader.read_documents(agent_sandbox_file("v0.5.6", "controller.yaml")))
    first = render_stack(spec_from_config(_config("one", 1)), loader)
    snapshot = copy.deepcopy(first)
    render_stack(spec_from_config(_config("two", 3)), loader)
    assert first == snapshot  # the second render changed nothing the first returned
    assert loader.read_documents(agent_sandbox_file("v0.5.6", "controller.yaml")) == pristine
    deployment = next(m for m in first if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    crd = next(m for m in first if m["kind"] == "CustomResourceDefinition")
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sandbox-infra"
    cached_crd = loader.read_documents(agent_sandbox_file("v0.5.6", "crds/agents.x-k8s.io_sandboxes.yaml"))[0]
    assert "labels" not in cached_crd["metadata"] or "app.kubernetes.io/managed-by" not in cached_crd["metadata"]["labels"]


def test_kubevirt_renders_leave_the_cached_operator_manifest_alone(tmp_path) -> None:
    loader = offline_loader(tmp_path)
    pinned = kubevirt_operator_file("v1.9.0")
    pristine = copy.deepcopy(loader.read_documents(pinned))
    config = vm_stack_config()
    first = render_stack(engine_spec(config), loader)
    snapshot = copy.deepcopy(first)
    config["cluster"]["waitForWorkloads"] = not engine_spec(config).cluster.wait_for_workloads
    second = render_stack(engine_spec(config), loader)
    assert first == snapshot and first != second  # the operator Deployment's await annotation differs
    assert loader.read_documents(pinned) == pristine
    namespace = next(m for m in first if m["kind"] == "Namespace" and m["metadata"]["name"] == "kubevirt")
    assert PRIVILEGED_EXCEPTION in namespace["metadata"]["annotations"]


def test_render_leaves_the_garbage_collector_as_it_found_it(tmp_path) -> None:
    spec = spec_from_config(_config("one", 1))
    offline_without_files = UpstreamLoader(mirror=tmp_path / "empty", cache=tmp_path / "cache", allow_download=False)
    assert gc.isenabled()
    with pytest.raises(UpstreamError):
        render_stack(spec, offline_without_files)
    assert gc.isenabled()  # re-enabled after a failed render too
    gc.disable()
    try:
        with pytest.raises(UpstreamError):
            render_stack(spec, offline_without_files)
        assert not gc.isenabled()  # a caller's choice stands
    finally:
        gc.enable()
