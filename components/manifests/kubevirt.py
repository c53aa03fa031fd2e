"""KubeVirt: the operator release manifest of the pinned version, and a typed KubeVirt CR.

virt-operator creates the other KubeVirt CRDs (VirtualMachine, VirtualMachinePool,
...) and components itself once the KubeVirt CR exists; the CR reports
`Available` when they are up, so everything that needs KubeVirt waits for that.
"""

from __future__ import annotations

from ..specs.kubevirt import KubeVirtSpec
from ..upstream import UpstreamError, UpstreamLoader, kubevirt_operator_file
from .common import DOMAIN, MANAGED_BY, SKIP_AWAIT, WAIT_FOR, Manifest, from_upstream, obj, unplaced_kinds

KUBEVIRT_API_VERSION = "kubevirt.io/v1"
POOL_API_VERSION = "pool.kubevirt.io/v1beta1"
CDI_API_VERSION = "cdi.kubevirt.io/v1beta1"
KUBEVIRT_CRD = "kubevirts.kubevirt.io"
OPERATOR = "virt-operator"
CR_NAME = "kubevirt"

# virt-handler runs privileged on every node, so the operator namespace cannot be
# `restricted`. Upstream labels it privileged; we keep that label and say why, so
# that policies can tell this one exception from a mistake.
PRIVILEGED_EXCEPTION = f"{DOMAIN}/pod-security-exception"
PRIVILEGED_REASON = "KubeVirt's virt-handler needs privileged access to the node (upstream default)"

# What each install needs registered before VMs can be created (checked for
# "bring your own" installs; a managed install creates them itself).
VM_CRDS = ("virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io")
POOL_CRD = "virtualmachinepools.pool.kubevirt.io"
DATA_VOLUME_CRD = "datavolumes.cdi.kubevirt.io"


def build_kubevirt_operator(spec: KubeVirtSpec, wait_for_workloads: bool, loader: UpstreamLoader) -> list[Manifest]:
    pinned = kubevirt_operator_file(spec.version, spec.operator_manifest.url, spec.operator_manifest.sha256)
    manifests = [from_upstream(doc) for doc in loader.read_documents(pinned)]
    source = pinned.mirror_path
    _one(manifests, "Namespace", None, source)
    _one(manifests, "CustomResourceDefinition", KUBEVIRT_CRD, source)
    operator = _one(manifests, "Deployment", OPERATOR, source)
    if unplaced := unplaced_kinds(manifests):
        raise UpstreamError(f"KubeVirt {spec.version}: the operator manifest has kinds this project does not place: "
                            f"{unplaced}; check sandbox-infra:kubevirt.operatorManifest.url")

    labels = {**MANAGED_BY, "app.kubernetes.io/part-of": "kubevirt", "app.kubernetes.io/version": spec.version}
    for manifest in manifests:
        manifest["metadata"]["labels"] = {**manifest["metadata"].get("labels", {}), **labels}
        if manifest["kind"] == "Namespace":
            manifest["metadata"].setdefault("annotations", {})[PRIVILEGED_EXCEPTION] = PRIVILEGED_REASON
    if not wait_for_workloads:
        operator["metadata"].setdefault("annotations", {})[SKIP_AWAIT] = "true"
    return manifests


def operator_namespace(manifests: list[Manifest]) -> str:
    return next(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace")


def build_kubevirt_cr(spec: KubeVirtSpec, wait_for_workloads: bool, namespace: str) -> Manifest:
    developer: dict[str, object] = {"featureGates": sorted(set(spec.feature_gates))}
    if spec.use_emulation:
        developer["useEmulation"] = True
    configuration: dict[str, object] = {
        "developerConfiguration": developer,
        "imagePullPolicy": spec.image_pull_policy,
    }
    if spec.launcher_seccomp_runtime_default:
        configuration["seccompConfiguration"] = {
            "virtualMachineInstanceProfile": {"customProfile": {"runtimeDefaultProfile": True}}
        }
    body: dict[str, object] = {
        "certificateRotateStrategy": {},
        "configuration": configuration,
        "customizeComponents": {},
        "imagePullPolicy": spec.image_pull_policy,
        "uninstallStrategy": spec.uninstall_strategy,
        "workloadUpdateStrategy": {},
    }
    infra: dict[str, object] = {}
    if spec.infra.as_manifest():
        infra["nodePlacement"] = spec.infra.as_manifest()
    if spec.infra.replicas is not None:
        infra["replicas"] = spec.infra.replicas
    if infra:
        body["infra"] = infra
    if spec.workloads.as_manifest():
        body["workloads"] = {"nodePlacement": spec.workloads.as_manifest()}
    # Available means virt-api, virt-controller and virt-handler are up and the VM CRDs
    # are registered: nothing that needs KubeVirt may be created before.
    annotations = {WAIT_FOR: "condition=Available"} if wait_for_workloads else {SKIP_AWAIT: "true"}
    return obj(
        KUBEVIRT_API_VERSION, "KubeVirt", CR_NAME, namespace,
        labels={"app.kubernetes.io/part-of": "kubevirt", "app.kubernetes.io/version": spec.version},
        annotations=annotations, spec=body,
    )


def build_kubevirt(spec: KubeVirtSpec, wait_for_workloads: bool, loader: UpstreamLoader) -> list[Manifest]:
    """The whole managed install: operator manifests plus the CR (nothing for external)."""
    if spec.install != "managed":
        return []
    operator = build_kubevirt_operator(spec, wait_for_workloads, loader)
    return [*operator, build_kubevirt_cr(spec, wait_for_workloads, operator_namespace(operator))]


def _one(manifests: list[Manifest], kind: str, name: str | None, source: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    if len(found) != 1:
        raise UpstreamError(f"{source}: expected one {kind}{f' {name!r}' if name else ''}, found {len(found)}")
    return found[0]
