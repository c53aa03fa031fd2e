"""The runtime catalogue ConfigMap: one shape per runtime, and every reference in it
points at an object the stack really renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.manifests.catalogue import CATALOGUE_FORMAT, CATALOGUE_KEY, READER_ROLE
from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs import spec_from_config

from .kubevirt_support import by_kind, named, offline_loader, sealed, vm_stack_config

ENTRY_KEYS = {"displayName", "executionKind", "namespace", "template", "warmPools", "serviceDns", "port"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    return render_stack(spec_from_config(sealed(vm_stack_config())), offline_loader(tmp_path_factory.mktemp("cat")))


def _catalogue(manifests: list[Manifest]) -> dict[str, Any]:
    config_map = named(manifests, "ConfigMap", "runtime-catalogue")
    assert config_map["metadata"]["namespace"] == "sandbox-catalogue"
    document = json.loads(config_map["data"][CATALOGUE_KEY])
    assert document["format"] == CATALOGUE_FORMAT
    return document["runtimes"]


def _find(manifests: list[Manifest], ref: dict[str, Any], namespace: str) -> Manifest:
    matches = [
        m for m in manifests
        if (m["apiVersion"], m["kind"], m["metadata"]["name"], m["metadata"].get("namespace"))
        == (ref["apiVersion"], ref["kind"], ref["name"], namespace)
    ]
    assert len(matches) == 1, f"catalogue points at {ref} in {namespace}, which the stack does not render"
    return matches[0]


def test_every_runtime_has_the_same_shape(rendered: list[Manifest]) -> None:
    catalogue = _catalogue(rendered)
    assert sorted(catalogue) == ["builder", "devbox", "node", "python", "sized"]
    for entry in catalogue.values():
        assert set(entry) == ENTRY_KEYS
    assert {i: e["executionKind"] for i, e in catalogue.items()} == {
        "python": "pod", "node": "pod", "devbox": "kubevirt-vm", "builder": "kubevirt-vm", "sized": "kubevirt-vm",
    }
    assert catalogue["python"]["displayName"] == "Python" and catalogue["node"]["displayName"] == "node"


def test_catalogue_references_resolve_to_rendered_objects(rendered: list[Manifest]) -> None:
    for runtime, entry in _catalogue(rendered).items():
        namespace = entry["namespace"]
        template = _find(rendered, entry["template"], namespace)
        for pool in entry["warmPools"]:
            _find(rendered, pool, namespace)
        if entry["executionKind"] == "pod":
            assert entry["serviceDns"] is None  # one Service per claimed sandbox (Sandbox status.serviceFQDN)
            ports = template["spec"]["podTemplate"]["spec"]["containers"][0]["ports"]
            assert entry["port"] == ports[0]["containerPort"]
            for pool in entry["warmPools"]:
                assert _find(rendered, pool, namespace)["spec"]["sandboxTemplateRef"]["name"] == template["metadata"]["name"]
        else:
            name, service_namespace, suffix = entry["serviceDns"].split(".", 2)
            assert (service_namespace, suffix) == (namespace, "svc.cluster.local")
            service = named(rendered, "Service", name)
            assert service["metadata"]["namespace"] == namespace, runtime
            assert entry["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_pod_runtimes_published_or_inline(rendered: list[Manifest]) -> None:
    catalogue = _catalogue(rendered)
    assert catalogue["python"]["template"]["name"] == "python" and catalogue["python"]["namespace"] == "team-a"
    assert [p["name"] for p in catalogue["python"]["warmPools"]] == ["python"]
    assert catalogue["node"]["namespace"] == "team-b" and catalogue["node"]["port"] == 3000
    assert catalogue["node"]["template"]["apiVersion"] == "extensions.agents.x-k8s.io/v1beta1"
    assert catalogue["builder"]["warmPools"] == [] and catalogue["builder"]["template"]["kind"] == "VirtualMachine"


def test_pod_runtimes_follow_the_agent_sandbox_api_version(tmp_path: Path) -> None:
    config = sealed(vm_stack_config())
    config["agentSandbox"] = {"version": "v0.4.6"}
    catalogue = _catalogue(render_stack(spec_from_config(config), offline_loader(tmp_path)))
    assert catalogue["node"]["template"]["apiVersion"] == "extensions.agents.x-k8s.io/v1alpha1"


def test_only_gateways_may_read_the_catalogue(rendered: list[Manifest]) -> None:
    role = named(rendered, "Role", READER_ROLE)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["runtime-catalogue"],
                              "verbs": ["get", "watch"]}]
    binding = named(rendered, "RoleBinding", READER_ROLE)
    assert binding["metadata"]["namespace"] == "sandbox-catalogue"
    assert {(s["namespace"], s["name"]) for s in binding["subjects"]} == {("team-a", "gateway"), ("edge", "gw")}


def test_catalogue_in_a_tenant_namespace_creates_no_namespace(tmp_path: Path) -> None:
    config = sealed(vm_stack_config())
    config["catalogue"] = {"namespace": "team-a", "name": "runtimes", "clusterDomain": "k8s.example"}
    manifests = render_stack(spec_from_config(config), offline_loader(tmp_path))
    assert [m["metadata"]["name"] for m in by_kind(manifests, "Namespace") if m["metadata"]["name"] == "team-a"] == ["team-a"]
    catalogue = json.loads(named(manifests, "ConfigMap", "runtimes")["data"][CATALOGUE_KEY])["runtimes"]
    assert catalogue["devbox"]["serviceDns"] == "devbox.team-a.svc.k8s.example"


def test_no_runtimes_no_catalogue(tmp_path: Path) -> None:
    config = sealed(vm_stack_config())
    config["runtimes"] = []
    manifests = render_stack(spec_from_config(config), offline_loader(tmp_path))
    assert not by_kind(manifests, "ConfigMap")
    assert "sandbox-catalogue" not in {m["metadata"]["name"] for m in by_kind(manifests, "Namespace")}
