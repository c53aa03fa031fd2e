"""The schema validation `check` runs offline (components/validation.py) against a live
kube-apiserver v1.36: for every case, the offline verdict (valid or not) equals the API
server's (a dry-run create with strict field validation: admitted, or refused with 400/422).

The API server has the real CRDs registered: agent-sandbox v0.5.6, KubeVirt v1.9.0's 19
operator CRDs, Cilium's CiliumNetworkPolicy (registered with every control plane)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.upstream import UpstreamLoader, agent_sandbox_file
from components.validation import AGENT_SANDBOX_CRDS, SchemaValidator

from .controlplane import ControlPlane, register_kubevirt_crds
from .helpers import render
from .kube import ApiError, wait_established

Manifest = dict[str, Any]
NAMESPACE = "schema-e2e"
RELEASE = "v0.5.6"
NINES = "9" * 40

POD: Manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                 "spec": {"automountServiceAccountToken": False,
                          "containers": [{"name": "a", "image": "busybox:1.37", "resources": {"limits": {"cpu": "1"}}}]}}


def _pod(change: Callable[[Manifest], object]) -> Manifest:
    pod = copy.deepcopy(POD)
    change(pod)
    return pod


def _cpu(value: object) -> Callable[[Manifest], object]:
    return lambda p: p["spec"]["containers"][0]["resources"]["limits"].update(cpu=value)


BUILT_IN: dict[str, Manifest] = {
    "pod": POD,
    "pod-spec-null": _pod(lambda p: p.update(spec=None)),
    "pod-no-containers": _pod(lambda p: p["spec"].update(containers=[])),
    "pod-no-image": _pod(lambda p: p["spec"]["containers"][0].pop("image")),
    "pod-unknown-field": _pod(lambda p: p["spec"].update(hostPIDs=True)),
    "pod-unknown-container-field": _pod(lambda p: p["spec"]["containers"][0].update(securityContxt={})),
    "pod-cpu-forty-nines": _pod(_cpu(NINES)),
    "pod-cpu-forty-nines-number": _pod(_cpu(int(NINES))),
    "pod-cpu-milli": _pod(_cpu("500m")),
    "pod-cpu-exponent": _pod(_cpu("1e3")),
    "pod-cpu-words": _pod(_cpu("1.5 cores")),
    "pod-cpu-upper-k": _pod(_cpu("5K")),
    "pod-cpu-abc": _pod(_cpu("abc")),
    "pod-wrong-type": _pod(lambda p: p["spec"].update(hostPID="yes")),
    "secret-base64": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "aGk="}},
    "secret-not-base64": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "hi!"}},
    "pod-int64-overflow": _pod(lambda p: p["spec"].update(activeDeadlineSeconds=2**63)),
    "configmap-number": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 5}},
    "networkpolicy-nested-list": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                  "metadata": {"name": "n"},
                                  "spec": {"podSelector": {}, "policyTypes": [["Ingress"]]}},
}


def _custom_cases() -> dict[str, Manifest]:
    """Objects the stacks render (valid) and broken copies of them."""
    rendered = [*render("dev"), *render("prod")]
    first = {kind: next(m for m in rendered if m["kind"] == kind)
             for kind in ("SandboxTemplate", "SandboxWarmPool", "VirtualMachinePool", "CiliumNetworkPolicy")}
    cases = {kind: m for kind, m in first.items()}

    def broken(kind: str, change: Callable[[Manifest], object]) -> Manifest:
        manifest = copy.deepcopy(first[kind])
        change(manifest)
        return manifest

    def vmi(m: Manifest) -> Manifest:
        return m["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]

    cases |= {
        "SandboxWarmPool-unknown-field": broken("SandboxWarmPool", lambda m: m["spec"].update(replica=2)),
        "SandboxWarmPool-bad-enum": broken("SandboxWarmPool", lambda m: m["spec"]["updateStrategy"].update(type="Rolling")),
        "SandboxWarmPool-no-template": broken("SandboxWarmPool", lambda m: m["spec"].pop("sandboxTemplateRef")),
        "SandboxTemplate-spec-null": broken("SandboxTemplate", lambda m: m["spec"]["podTemplate"].update(spec=None)),
        "VirtualMachinePool-unknown-field": broken("VirtualMachinePool", lambda m: vmi(m)["domain"].update(cpus={})),
        "VirtualMachinePool-wrong-type": broken("VirtualMachinePool",
                                                lambda m: vmi(m)["domain"].setdefault("cpu", {}).update(cores="two")),
        "VirtualMachinePool-no-devices": broken("VirtualMachinePool", lambda m: vmi(m)["domain"].pop("devices")),
        "VirtualMachinePool-memory-words": broken("VirtualMachinePool",
                                                  lambda m: vmi(m)["domain"].update(memory={"guest": "2 gigs"})),
        "SandboxTemplate-cpu-forty-nines-number": broken(
            "SandboxTemplate", lambda m: m["spec"]["podTemplate"]["spec"]["containers"][0].setdefault(
                "resources", {}).setdefault("limits", {}).update(cpu=int(NINES))),
        "VirtualMachinePool-memory-forty-nines": broken("VirtualMachinePool",
                                                        lambda m: vmi(m)["domain"].update(memory={"guest": NINES})),
        "VirtualMachinePool-memory-forty-nines-number": broken(
            "VirtualMachinePool", lambda m: vmi(m)["domain"].update(memory={"guest": int(NINES)})),
        "CiliumNetworkPolicy-unknown-field": broken("CiliumNetworkPolicy",
                                                    lambda m: m["spec"].update(endpointSelectors=[])),
    }
    return cases


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> Iterator[ControlPlane]:
    kube = plane.client()
    loader = UpstreamLoader()
    crds = [loader.read_documents(agent_sandbox_file(RELEASE, path))[0] for path in AGENT_SANDBOX_CRDS]
    for crd in crds:
        crd["spec"].pop("conversion", None)  # no controller runs here to convert; v1beta1 is stored as sent
        kube.apply(crd)
    wait_established(kube, crds)
    register_kubevirt_crds(kube)
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}})
    yield plane


def _live_verdict(plane: ControlPlane, manifest: Manifest) -> str:
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["namespace"] = NAMESPACE
    try:
        plane.client().create(manifest, dry_run=True)
    except ApiError as error:
        assert error.status in (400, 422), f"{manifest['kind']}: not a schema verdict: {error}"
        return "refused"
    return "valid"


def test_offline_validation_agrees_with_the_api_server(api: ControlPlane) -> None:
    validator = SchemaValidator(UpstreamLoader(), RELEASE)
    cases = {**BUILT_IN, **_custom_cases()}
    live, offline, reasons = {}, {}, {}
    for name, manifest in cases.items():
        live[name] = _live_verdict(api, manifest)
        problems = validator.problems(manifest)
        offline[name] = "refused" if problems else "valid"
        reasons[name] = [str(p) for p in problems]
    print(f"\n{len(cases)} cases: {sum(v == 'refused' for v in live.values())} refused by the API server")
    for name in cases:
        print(f"  {name:40} live {live[name]:8} offline {offline[name]:8} {'; '.join(reasons[name])[:150]}")
    assert offline == live
    # Both verdicts occur, for built-in kinds and custom resources alike: the test can fail.
    assert {live[name] for name in BUILT_IN} == {"valid", "refused"}
    assert {live[name] for name in cases if name not in BUILT_IN} == {"valid", "refused"}
