"""KubeVirt component: the operator release and the KubeVirt CR, or, for a KubeVirt
installed by someone else, a check that its CRDs are registered."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from .k8s import dependencies, kubernetes_resource
from .manifests.kubevirt import (
    build_kubevirt_cr,
    build_kubevirt_operator,
    operator_namespace,
)
from .prerequisites import KUBEVIRT_CRDS, RequiredCrds, RequiredCrdsArgs
from .specs.cluster import ClusterSpec
from .specs.kubevirt import KubeVirtSpec
from .upstream import UpstreamError, UpstreamLoader

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


@dataclass(frozen=True)
class KubeVirtArgs:
    cluster: ClusterSpec
    """The cluster it goes to (`cluster` in docs/config.md)."""
    spec: KubeVirtSpec = field(default_factory=KubeVirtSpec)
    """Release, feature gates (only the vetted safe set is accepted), emulation (off: VMs
    need /dev/kvm; emulation is for dev clusters only) and `install: external` for a
    KubeVirt someone else runs (`kubevirt` in docs/config.md)."""
    loader: UpstreamLoader = field(default_factory=UpstreamLoader)
    """Where the operator manifest comes from: the mirror, else a download checked against its sha256."""


class KubeVirt(pulumi.ComponentResource):
    """The KubeVirt operator and its KubeVirt CR, or, with `install: external`, a check that
    KubeVirt's CRDs are registered.

    `ready` lists what every VM must wait for: the KubeVirt CR, which the engine
    awaits until `condition=Available` (virt-operator has then registered the VM CRDs
    and started virt-api, virt-controller and virt-handler).

    The operator CRD is retained on delete (deleting it deletes the KubeVirt CR and
    with it every VM), and the CR carries `uninstallStrategy:
    BlockUninstallIfWorkloadsExist` unless the stack says otherwise.
    """

    version: str
    """The KubeVirt release, e.g. `v1.9.0`."""
    namespace: str | None
    """The operator's namespace (`kubevirt`) where the stack installs it; None for an external
    install (its namespace is not known)."""
    ready: list[pulumi.Resource]
    """What VMs must wait for: the KubeVirt CR, Available (or, external, the CRD lookups)."""

    def __init__(self, name: str, args: KubeVirtArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:KubeVirt", name, None, opts)
        spec = args.spec
        self.version = spec.version
        after = dependencies(opts)
        if spec.install == "external":
            check = RequiredCrds(f"{name}-crds", RequiredCrdsArgs(KUBEVIRT_CRDS, "KubeVirt"),
                                 pulumi.ResourceOptions(parent=self, depends_on=after))
            self.ready = check.ready
            self.namespace = None
            self.register_outputs({"version": spec.version, "install": "external"})
            return

        manifests = build_kubevirt_operator(spec, args.cluster, args.loader)
        child = pulumi.ResourceOptions(parent=self)

        def create(kinds: tuple[str, ...], depends_on: list[pulumi.Resource], **extra: object) -> list[pulumi.CustomResource]:
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*after, *depends_on], **extra))
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
            build_kubevirt_cr(spec, args.cluster, namespace),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*namespaces, *crds, *operator])),
        )
        self.ready = [self.cr]
        self.register_outputs({"version": spec.version, "install": "managed", "namespace": self.namespace})
