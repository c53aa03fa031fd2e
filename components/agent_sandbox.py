"""AgentSandbox component: CRDs, namespace, RBAC, Services and the controller."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from .k8s import dependencies, kubernetes_resource, metadata
from .manifests.agent_sandbox import build_agent_sandbox
from .specs.agent_sandbox import AgentSandboxSpec
from .specs.cluster import ClusterSpec
from .upstream import UpstreamError, UpstreamLoader


@dataclass(frozen=True)
class AgentSandboxArgs:
    cluster: ClusterSpec
    """The cluster it goes to (`cluster` in docs/config.md): its name, environment and
    whether `pulumi up` waits for workloads."""
    spec: AgentSandboxSpec = field(default_factory=AgentSandboxSpec)
    """Which release (`agentSandbox` in docs/config.md); default: the pinned one, whose
    manifests are checked against their sha256 before use."""
    loader: UpstreamLoader = field(default_factory=UpstreamLoader)
    """Where the release's manifests come from: the mirror in `UPSTREAM_DIR`, else a
    download checked against the pinned sha256."""


class AgentSandbox(pulumi.ComponentResource):
    """Installs the pinned agent-sandbox release with extensions enabled.

    Make templates and pools depend on it (`opts.depends_on`): they then wait for the
    CRDs and the controller Deployment (which serves the v0.5.6 conversion webhook). CRDs
    are retained on delete: deleting a CRD deletes every sandbox of that kind.
    """

    namespace: pulumi.Output[str]
    """The controller's namespace (`agent-sandbox-system`)."""
    version: str
    """The installed release, e.g. `v0.5.6`."""
    api_version: str
    """The API version templates, pools and claims are written in (`SandboxTemplateArgs.api_version`)."""
    ready: list[pulumi.Resource]
    """The CRDs, the controller and its Services: what custom resources must wait for.
    Depending on the component itself waits for these and the rest of the install."""

    def __init__(self, name: str, args: AgentSandboxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:AgentSandbox", name, None, opts)
        spec = args.spec
        manifests = build_agent_sandbox(spec, args.cluster, args.loader)
        child = pulumi.ResourceOptions(parent=self)
        after = dependencies(opts)

        def create(kind: str, depends_on: list[pulumi.Resource], **extra: object) -> list[pulumi.CustomResource]:
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*after, *depends_on], **extra))
            return [kubernetes_resource(m, options) for m in manifests if m["kind"] == kind]

        self.crds = create("CustomResourceDefinition", [], retain_on_delete=True)
        namespaces = create("Namespace", [])
        rbac = [
            r
            for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
            for r in create(kind, namespaces)
        ]
        services = create("Service", namespaces)
        self.controller = create("Deployment", [*namespaces, *self.crds, *rbac])
        created = {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
                   "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment"}
        leftover = sorted({m["kind"] for m in manifests} - created)
        if leftover:
            raise UpstreamError(f"agent-sandbox {spec.version}: upstream added kinds this component does not place: "
                                f"{leftover}; pin a release this project supports (sandbox-infra:agentSandbox.version)")
        self.ready = [*self.crds, *self.controller, *services]
        self.namespace = metadata(namespaces[0])
        self.version = spec.version
        self.api_version = spec.api_version
        self.register_outputs({"version": spec.version, "apiVersion": spec.api_version, "namespace": self.namespace})
