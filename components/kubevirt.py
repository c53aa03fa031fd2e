"""KubeVirt component: the operator release and the KubeVirt CR, or, for a KubeVirt
installed by someone else, a check that its CRDs are registered."""

from __future__ import annotations

import pulumi

from .k8s import kubernetes_resource
from .manifests.kubevirt import (
    KUBEVIRT_CRD,
    POOL_CRD,
    VM_CRDS,
    build_kubevirt_cr,
    build_kubevirt_operator,
    operator_namespace,
)
from .prerequisites import RequiredCrds
from .specs.cluster import ClusterSpec
from .specs.kubevirt import KubeVirtSpec
from .upstream import UpstreamError, UpstreamLoader

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


class KubeVirt(pulumi.ComponentResource):
    """`ready` lists what every VM must wait for: the KubeVirt CR, which the engine
    awaits until `condition=Available` (virt-operator has then registered the VM CRDs
    and started virt-api, virt-controller and virt-handler).

    The operator CRD is retained on delete (deleting it deletes the KubeVirt CR and
    with it every VM), and the CR carries `uninstallStrategy:
    BlockUninstallIfWorkloadsExist` unless the stack says otherwise.
    """

    def __init__(
        self,
        name: str,
        spec: KubeVirtSpec,
        cluster: ClusterSpec,
        loader: UpstreamLoader,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sandbox-infra:index:KubeVirt", name, None, opts)
        self.version = spec.version
        self.namespace: str | None = None
        """KubeVirt's namespace where the stack installs it (an external install's is not known)."""
        if spec.install == "external":
            check = RequiredCrds(f"{name}-crds", [KUBEVIRT_CRD, *VM_CRDS, POOL_CRD], "KubeVirt",
                                 pulumi.ResourceOptions(parent=self))
            self.ready: list[pulumi.Resource] = check.ready
            self.register_outputs({"version": spec.version, "install": "external"})
            return

        manifests = build_kubevirt_operator(spec, cluster, loader)
        child = pulumi.ResourceOptions(parent=self)

        def create(kinds: tuple[str, ...], depends_on: list[pulumi.Resource], **extra: object) -> list[pulumi.CustomResource]:
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on, **extra))
            return [kubernetes_resource(m, options) for m in manifests if m["kind"] in kinds]

        crds = create(("CustomResourceDefinition",), [], retain_on_delete=True)
        namespaces = create(("Namespace",), [])
        priority = create(("PriorityClass",), [])
        rbac = create(RBAC_KINDS, namespaces)
        operator = create(("Deployment",), [*namespaces, *crds, *priority, *rbac])
        placed = {"CustomResourceDefinition", "Namespace", "PriorityClass", "Deployment", *RBAC_KINDS}
        leftover = sorted({m["kind"] for m in manifests} - placed)
        if leftover:
            raise UpstreamError(f"KubeVirt {spec.version}: the operator manifest has kinds this component does not place: "
                                f"{leftover}; check sandbox-infra:kubevirt.operatorManifest.url")

        self.namespace = namespace = operator_namespace(manifests)
        self.cr = kubernetes_resource(
            build_kubevirt_cr(spec, cluster, namespace),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*namespaces, *crds, *operator])),
        )
        self.ready = [self.cr]
        self.register_outputs({"version": spec.version, "install": "managed", "namespace": namespace})
