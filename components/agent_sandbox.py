"""AgentSandbox component: CRDs, namespace, RBAC, Services and the controller."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.agent_sandbox import build_agent_sandbox
from .specs.agent_sandbox import AgentSandboxSpec
from .specs.cluster import ClusterSpec
from .upstream import UpstreamError, UpstreamLoader


class AgentSandbox(pulumi.ComponentResource):
    """Installs the pinned agent-sandbox release with extensions enabled.

    `ready` lists what every custom resource must wait for: the CRDs, and the
    controller Deployment (it serves the v0.5.6 conversion webhook). CRDs are
    retained on delete: deleting a CRD deletes every sandbox of that kind.
    """

    def __init__(
        self,
        name: str,
        spec: AgentSandboxSpec,
        cluster: ClusterSpec,
        loader: UpstreamLoader,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:AgentSandbox", name, None, opts)
        manifests = build_agent_sandbox(spec, cluster, loader)
        child = pulumi.ResourceOptions(parent=self)

        def create(kind: str, depends_on: list[pulumi.Resource], **extra: object) -> list[pulumi.CustomResource]:
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on, **extra))
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
        self.ready: list[pulumi.Resource] = [*self.crds, *self.controller, *services]
        self.version = spec.version
        self.register_outputs({"version": spec.version, "namespace": "agent-sandbox-system"})
