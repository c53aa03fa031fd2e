"""The rendered stacks against a live kube-apiserver: its own schema validation (built-in
types, the agent-sandbox CRDs' openAPIV3Schema and KubeVirt v1.9.0's 19 operator CRDs) and
its own admission (Pod Security `restricted`, ResourceQuota, LimitRange) decide, not our
copy of the schemas.

This needs only etcd + kube-apiserver, so it runs even where the Pulumi engine cannot
be built; test_pulumi_engine.py does the same through `pulumi up`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator

import pytest

from components.manifests.common import Manifest

from .controlplane import ControlPlane, register_kubevirt_crds
from .fake_node import FakeControllerManager
from .helpers import SHIPPED_STACKS, contains, is_kubevirt, lost_fields, render
from .kube import ApiError, Kube, apply_all

CRD_GROUPS = ("agents.x-k8s.io", "extensions.agents.x-k8s.io")


def tenants(manifests: list[Manifest]) -> list[str]:
    return [m["metadata"]["name"] for m in manifests
            if m["kind"] == "Namespace" and m["metadata"]["name"] != "agent-sandbox-system"]


@pytest.fixture(scope="module")
def kube(plane: ControlPlane) -> Iterator[Kube]:
    namespaces = [ns for stack in SHIPPED_STACKS for ns in tenants(render(stack))]
    kube = plane.client()
    register_kubevirt_crds(kube)  # what virt-operator registers at run time (no node runs it here)
    with FakeControllerManager(kube, namespaces):
        yield kube


def apply_stack(kube: Kube, manifests: list[Manifest]) -> list[Manifest]:
    """Apply a rendered stack; return what was applied (all of it: every kind is served)."""
    left_out = apply_all(kube, manifests)
    assert not left_out, f"the API server serves no kind for {[(m['kind'], m['metadata']['name']) for m in left_out]}"
    return manifests


@pytest.fixture(scope="module")
def dev(kube: Kube) -> list[Manifest]:
    return apply_stack(kube, render("dev"))


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_object_of_a_shipped_stack_is_admitted_and_stored(kube: Kube, dev: list[Manifest], stack: str) -> None:
    manifests = dev if stack == "dev" else apply_stack(kube, render(stack))
    custom = kubevirt = 0
    for manifest in manifests:
        meta = manifest["metadata"]
        stored = kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
        if "stringData" in body:  # write-only: the API server stores it base64-encoded in `data`
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in body.pop("stringData").items()}
            body["data"] = {**body.get("data", {}), **encoded}
        assert contains(stored, body), f"{manifest['kind']} {meta['name']}: the API server changed or pruned fields"
        assert contains(stored["metadata"].get("labels", {}), meta.get("labels", {}))
        if is_kubevirt(manifest):  # stored as sent, under KubeVirt's real schema: nothing may be lost
            assert lost_fields(stored, manifest) == [], f"{manifest['kind']} {meta['name']}"
            kubevirt += 1
        custom += manifest["apiVersion"].split("/")[0] in CRD_GROUPS
    assert custom >= 2, "the stack should contain a SandboxTemplate and a SandboxWarmPool"
    print(f"\n{stack}: {len(manifests)} objects stored as sent, {kubevirt} of them KubeVirt objects")
    assert kubevirt == sum(map(is_kubevirt, render(stack)))


def test_crd_validation_rejects_what_the_schema_forbids(kube: Kube, dev: list[Manifest]) -> None:
    """The control for the test above: the live CRD schemas really are enforced."""
    pool = copy.deepcopy(next(m for m in dev if m["kind"] == "SandboxWarmPool"))
    pool["metadata"]["name"] = "schema-probe"
    misspelt = copy.deepcopy(pool)
    misspelt["spec"]["replicaz"] = 1
    with pytest.raises(ApiError, match=r'unknown field "spec.replicaz"'):
        kube.create(misspelt, dry_run=True)
    wrong_type = copy.deepcopy(pool)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(ApiError, match=r"spec.replicas"):
        kube.create(wrong_type, dry_run=True)


def test_reapplying_the_dev_stack_changes_nothing(kube: Kube, dev: list[Manifest]) -> None:
    apply_stack(kube, dev)  # the other stacks share the controller install: make dev current again
    for manifest in dev:
        meta = manifest["metadata"]
        before = kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        after = kube.apply(manifest)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (
            f"{manifest['kind']} {meta['name']} changed on a second apply")


def _pod_from_template(template: Manifest, name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": template["metadata"]["namespace"]},
            "spec": copy.deepcopy(template["spec"]["podTemplate"]["spec"])}


def test_template_pods_are_admitted_by_pod_security_restricted(kube: Kube, dev: list[Manifest]) -> None:
    template = next(m for m in dev if m["kind"] == "SandboxTemplate")
    namespace = kube.get("v1", "Namespace", template["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    admitted = kube.create(_pod_from_template(template, "psa-probe"), dry_run=True)
    assert admitted["spec"]["securityContext"]["runAsNonRoot"] is True


def test_pod_security_rejects_a_violating_template(kube: Kube, dev: list[Manifest]) -> None:
    template = copy.deepcopy(next(m for m in dev if m["kind"] == "SandboxTemplate"))
    container = template["spec"]["podTemplate"]["spec"]["containers"][0]
    container["securityContext"].update(privileged=True, allowPrivilegeEscalation=True, runAsNonRoot=False)
    with pytest.raises(ApiError) as rejected:
        kube.create(_pod_from_template(template, "psa-violation"), dry_run=True)
    print(f"\nAPI server: {rejected.value}")
    assert rejected.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in rejected.value.message
    assert "privileged" in rejected.value.message


def test_kubevirt_objects_meet_kubevirt_s_real_schema(kube: Kube, dev: list[Manifest]) -> None:
    """The control for the KubeVirt comparison above: the CRDs are KubeVirt's, not open
    stand-ins. Strict validation refuses an unknown field; without it, the field is pruned
    and `lost_fields` reports it."""
    pool = copy.deepcopy(next(m for m in dev if m["kind"] == "VirtualMachinePool"))
    pool["metadata"]["name"] = "schema-probe"
    pool["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]["domain"]["cpus"] = {"cores": 2}
    with pytest.raises(ApiError, match=r'unknown field "spec.virtualMachineTemplate.spec.template.spec.domain.cpus"'):
        kube.create(pool, dry_run=True)
    url = kube.resource(pool["apiVersion"], pool["kind"]).url(pool["metadata"]["namespace"])
    stored = kube.request("POST", url, body=pool, params={"dryRun": "All", "fieldValidation": "Ignore"})
    assert lost_fields(stored, pool) == [".spec.virtualMachineTemplate.spec.template.spec.domain.cpus: pruned"]
