"""Generated admission policies on a live kube-apiserver: install them, wait until the API
server enforces them, and read its verdict on an object (shared by tests/e2e/test_admission.py
and benchmarks/admission_latency.py).

KubeVirt's kinds are served by KubeVirt v1.9.0's real CRDs (the 19 virt-operator installs,
and the KubeVirt CR's), so the KubeVirt rules judge objects KubeVirt's schemas accept. The
agent-sandbox and KEDA kinds get stand-in CRDs with an open schema: admission then sees
exactly the object the offline rules judged (no pruning, no defaulting, no conversion webhook
for v1alpha1), so a difference in verdict is a difference between the CEL and the Python,
nothing else; their real CRD schemas are exercised by test_api_server.py. CiliumNetworkPolicy
is served by Cilium's own CRD, which every e2e control plane registers (controlplane.py).
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from sandbox_policy.admission import RESOURCES

from components.upstream import UpstreamLoader
from components.validation import KUBEVIRT_CR_CRD

from .controlplane import register_kubevirt_crds
from .kube import ApiError, Kube, wait_established
from .pulumi_project import open_crd

Manifest = dict[str, Any]
VAP_API = "admissionregistration.k8s.io/v1"
# The API version each custom kind is served at (the examples and stacks use these). KubeVirt's
# kinds are not stood in for: KubeVirt v1.9.0's real CRDs are registered (register_stand_ins).
CUSTOM_VERSIONS = {
    "agents.x-k8s.io": ["v1beta1", "v1alpha1"],
    "extensions.agents.x-k8s.io": ["v1beta1", "v1alpha1"],
    "keda.sh": ["v1alpha1"],
}
STAND_INS = [open_crd(group, plural, kind, CUSTOM_VERSIONS[group], stands_in_for="admission-equality")
             for kind, (group, plural, _) in RESOURCES.items() if group in CUSTOM_VERSIONS]
DENIED = re.compile(r"ValidatingAdmissionPolicy '([^']+)' with binding '[^']+' denied request")
Verdict = Literal["admitted", "denied", "refused"]


def register_stand_ins(kube: Kube) -> None:
    """Open stand-ins for agent-sandbox and KEDA; KubeVirt's real CRDs (the 19 virt-operator
    installs, and the KubeVirt CR's own), so the KubeVirt rules judge objects that KubeVirt's
    schemas accept."""
    kubevirt_cr = UpstreamLoader().read_documents(KUBEVIRT_CR_CRD)
    for crd in (*STAND_INS, *kubevirt_cr):
        kube.apply(crd)
    wait_established(kube, [*STAND_INS, *kubevirt_cr], timeout=60)
    register_kubevirt_crds(kube)


def namespaced(manifest: Manifest, namespace: str) -> Manifest:
    """A copy placed in `namespace` (or in none, for cluster-scoped kinds)."""
    manifest = copy.deepcopy(manifest)
    meta = manifest.setdefault("metadata", {})
    meta.setdefault("name", "example")
    if RESOURCES.get(manifest["kind"], ("", "", True))[2]:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return manifest


def verdict(kube: Kube, manifest: Manifest) -> tuple[Verdict, str, str]:
    """(verdict, denying policy or '', message) of a dry-run create. AlreadyExists comes after
    admission, so it means admitted; any other refusal is the API server's own validation."""
    try:
        kube.create(manifest, dry_run=True)
    except ApiError as error:
        if error.status == 409:
            return "admitted", "", ""
        found = DENIED.search(error.message)
        return ("denied", found.group(1), error.message) if found else ("refused", "", error.message)
    return "admitted", "", ""


# Canary names are never reused: a deleted canary may still deny until the plugin sees the deletion.
_CANARIES = itertools.count()


@dataclass
class Activation:
    """Waits until everything installed before it is enforced: policies and bindings reach the
    admission plugin through one watch each, in order, so once a canary created last denies,
    every earlier object is known to it."""

    kube: Kube
    namespace: str

    def wait(self, timeout: float = 60) -> None:
        name = f"canary-{next(_CANARIES)}"
        label = f"canary.e2e.sandbox-infra.dev/{name}"
        self.kube.create({"apiVersion": VAP_API, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
                          "spec": {"matchConstraints": {"resourceRules": [{
                              "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
                              "validations": [{"expression": "false", "message": "canary"}]}})
        self.kube.create({"apiVersion": VAP_API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
                          "spec": {"policyName": name, "validationActions": ["Deny"],
                                   "matchResources": {"objectSelector": {"matchLabels": {label: "on"}}}}})
        probe = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": self.namespace, "labels": {label: "on"}}}
        deadline = time.monotonic() + timeout
        while verdict(self.kube, probe)[0] != "denied":
            if time.monotonic() > deadline:
                raise TimeoutError(f"admission policies not enforced after {timeout:.0f} s")
            time.sleep(0.1)
        for kind in ("ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"):
            self.kube.delete(VAP_API, kind, name)
