"""KubeVirt component: the operator release and the KubeVirt CR, or, for a KubeVirt
installed by someone else, a check that its CRDs are registered."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .k8s import as_spec, dependencies, place
from .manifests.kubevirt import build_kubevirt, operator_namespace
from .prerequisites import KUBEVIRT_CRDS, RequiredCrds, RequiredCrdsArgs
from .specs.kubevirt import KubeVirtSpec
from .upstream import UpstreamLoader


@dataclass
class KubeVirtArgs:
    spec: KubeVirtSpec | dict[str, Any] = field(default_factory=KubeVirtSpec)
    """Release, feature gates (only the vetted safe set is accepted), emulation (off: VMs
    need /dev/kvm; emulation is for dev clusters only) and `install: external` for a
    KubeVirt someone else runs (`kubevirt` in docs/config.md), as a `KubeVirtSpec` or a
    mapping of those keys; default: the pinned release, installed by this component."""
    wait_for_workloads: bool = True
    """Let `pulumi up` wait until the KubeVirt CR reports `Available`. Off only where no kubelet runs pods."""
    loader: UpstreamLoader | None = None
    """Where the operator manifest comes from; default: the mirror, else a download checked against its sha256."""


class KubeVirt(pulumi.ComponentResource):
    """The KubeVirt operator and its KubeVirt CR, or, with `install: external`, a check that
    KubeVirt's CRDs are registered.

    Pass it to the VM environments (`VmEnvironmentArgs.kubevirt`): their VMs wait for the
    KubeVirt CR, which the engine awaits until `condition=Available` (virt-operator has then
    registered the VM CRDs and started virt-api, virt-controller and virt-handler).

    The operator CRD is retained on delete (deleting it deletes the KubeVirt CR and
    with it every VM), and the CR carries `uninstallStrategy:
    BlockUninstallIfWorkloadsExist` unless the stack says otherwise.
    """

    version: pulumi.Output[str]
    """The KubeVirt release, e.g. `v1.9.0`."""
    namespace: pulumi.Output[str | None]
    """The operator's namespace (`kubevirt`) where the component installs it; None for an
    external install (its namespace is not known)."""

    def __init__(self, name: str, args: KubeVirtArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:KubeVirt", name, None, opts)
        self._spec = spec = as_spec(KubeVirtSpec, args.spec, f"KubeVirt {name!r}")
        after = dependencies(opts)
        self._namespace: str | None = None
        if spec.install == "external":
            RequiredCrds(f"{name}-crds", RequiredCrdsArgs(KUBEVIRT_CRDS, "KubeVirt"),
                         pulumi.ResourceOptions(parent=self, depends_on=after))
        else:
            manifests = build_kubevirt(spec, args.wait_for_workloads, args.loader or UpstreamLoader())
            place(self, manifests, after)
            self._namespace = operator_namespace(manifests)
        self.version = pulumi.Output.from_input(spec.version)
        self.namespace = pulumi.Output.from_input(self._namespace)
        self.register_outputs({"version": self.version, "install": spec.install, "namespace": self.namespace})
