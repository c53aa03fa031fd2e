"""The agent-sandbox install: upstream manifests of the pinned release, assembled
the way upstream's all-in-one kustomization does it, then hardened.

Upstream ships two copies of the controller Deployment (`controller.yaml` and
`extensions.controller.yaml`, meant for sequential `kubectl apply`). We keep
exactly one: the core Deployment, given the extension container settings
(args, mounts, volumes) read from `extensions.controller.yaml` of the same
release, so the two can never drift apart.
"""

from __future__ import annotations

import copy

from ..specs.agent_sandbox import AgentSandboxSpec
from ..upstream import UpstreamError, UpstreamLoader, agent_sandbox_file
from .common import MANAGED_BY, RESTRICTED_NAMESPACE_LABELS, SKIP_AWAIT, Manifest, from_upstream, unplaced_kinds

NAMESPACE = "agent-sandbox-system"  # fixed: the CRD conversion webhook points at it
CONTROLLER = "agent-sandbox-controller"
CONTROLLER_UID = 65532  # the nonroot user of the ko/distroless base the release image uses

CRD_FILES = (
    "crds/agents.x-k8s.io_sandboxes.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxclaims.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxtemplates.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxwarmpools.yaml",
)
# The kustomization's resource set, minus the duplicate extensions Deployment.
INSTALL_FILES = ("controller.yaml", "rbac.generated.yaml", "extensions.yaml", "extensions-rbac.generated.yaml")


def build_agent_sandbox(spec: AgentSandboxSpec, wait_for_workloads: bool, loader: UpstreamLoader) -> list[Manifest]:
    def documents(path: str) -> list[Manifest]:
        return [from_upstream(doc) for doc in loader.read_documents(agent_sandbox_file(spec.version, path))]

    manifests = [doc for path in CRD_FILES + INSTALL_FILES for doc in documents(path)]
    if unplaced := unplaced_kinds(manifests):
        raise UpstreamError(f"agent-sandbox {spec.version}: upstream added kinds this project does not place: "
                            f"{unplaced}; pin a release this project supports (sandbox-infra:agentSandbox.version)")
    extensions = _controller(documents("extensions.controller.yaml"), "extensions.controller.yaml")
    controller = _controller(manifests, "controller.yaml")

    labels = {**MANAGED_BY, "app.kubernetes.io/part-of": "agent-sandbox", "app.kubernetes.io/version": spec.version}
    for manifest in manifests:
        manifest["metadata"]["labels"] = {**manifest["metadata"].get("labels", {}), **labels}
        if manifest["kind"] == "Namespace":
            manifest["metadata"]["labels"].update(RESTRICTED_NAMESPACE_LABELS)
        if manifest["kind"] == "Service" and not wait_for_workloads:
            # pulumi-kubernetes waits up to 10 minutes for a Service's endpoints, which
            # only the controller's running pods provide.
            manifest["metadata"]["annotations"][SKIP_AWAIT] = "true"

    _enable_extensions(controller, extensions)
    _harden(controller, spec, wait_for_workloads)
    return manifests


def _controller(manifests: list[Manifest], source: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == CONTROLLER]
    if len(found) != 1:
        raise UpstreamError(f"{source}: expected one Deployment {CONTROLLER!r}, found {len(found)}")
    return found[0]


def _container(deployment: Manifest) -> dict:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == CONTROLLER)


def _enable_extensions(controller: Manifest, extensions: Manifest) -> None:
    source, target = _container(extensions), _container(controller)
    target["args"] = list(source["args"])
    if "volumeMounts" in source:
        target["volumeMounts"] = copy.deepcopy(source["volumeMounts"])
    if "volumes" in extensions["spec"]["template"]["spec"]:
        controller["spec"]["template"]["spec"]["volumes"] = copy.deepcopy(extensions["spec"]["template"]["spec"]["volumes"])


def _harden(controller: Manifest, spec: AgentSandboxSpec, wait_for_workloads: bool) -> None:
    """Upstream's Deployment sets no security context or resources; the namespace
    enforces Pod Security `restricted`, so the controller must meet it."""
    controller["spec"]["replicas"] = spec.controller.replicas
    if not wait_for_workloads:
        controller["metadata"].setdefault("annotations", {})[SKIP_AWAIT] = "true"
    pod = controller["spec"]["template"]["spec"]
    pod["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": CONTROLLER_UID,
        "runAsGroup": CONTROLLER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # controller-runtime writes webhook serving certificates under /tmp.
    pod.setdefault("volumes", []).append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
    container = _container(controller)
    container["image"] = spec.controller_image()
    container["resources"] = spec.controller.resources.as_manifest()
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container.setdefault("volumeMounts", []).append({"name": "tmp", "mountPath": "/tmp"})
