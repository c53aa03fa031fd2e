"""The KubeVirt install: pinned operator release and a typed `KubeVirt` CR."""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import Field, field_validator, model_validator
from sandbox_policy.settings import SAFE_KUBEVIRT_FEATURE_GATES

from ..pins import DEFAULT_KUBEVIRT_VERSION, KubeVirtVersion
from .base import NodeSelector, Spec, label_value_problem, qualified_name_problem

# The KubeVirt feature gates a stack may turn on: the vetted set the policy rules also hold
# hand-written KubeVirt CRs to (sandbox_policy/settings.py lists them and says why the
# others are left out).
FeatureGate = Literal[SAFE_KUBEVIRT_FEATURE_GATES]


class OperatorManifestSpec(Spec):
    url: str | None = Field(default=None, pattern=r"^https://\S+$")
    """Where to fetch `kubevirt-operator.yaml` when no local mirror has it. Default: the
    GitHub release asset of `version`."""
    sha256: str | None = Field(default=None, pattern=r"^[a-f0-9]{64}$")

    @field_validator("url")
    @classmethod
    def _well_formed(cls, url: str | None) -> str | None:
        try:
            host = urllib.parse.urlsplit(url).hostname if url is not None else ""
        except ValueError:  # e.g. an unclosed IPv6 bracket
            host = None
        if url is not None and not host:
            raise ValueError("must be a well-formed https URL with a host, such as "
                             "https://github.com/kubevirt/kubevirt/releases/download/v1.9.0/kubevirt-operator.yaml")
        return url
    """Digest the manifest must match (mirror or download). Without it a download is
    accepted with a warning: no digest of the upstream asset is pinned in this project."""


class Toleration(Spec):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None

    @field_validator("key")
    @classmethod
    def _qualified_key(cls, key: str | None) -> str | None:
        problem = None if key is None else qualified_name_problem(key)
        if problem is not None:
            raise ValueError(problem)
        return key

    @model_validator(mode="after")
    def _label_value(self) -> Toleration:
        problem = None if self.value is None else label_value_problem(self.key or "", self.value)
        if problem is not None:
            raise ValueError(problem)
        return self
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    def as_manifest(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}


class PlacementSpec(Spec):
    node_selector: NodeSelector = {}
    tolerations: list[Toleration] = []

    def as_manifest(self) -> dict[str, object]:
        placement: dict[str, object] = {}
        if self.node_selector:
            placement["nodeSelector"] = dict(sorted(self.node_selector.items()))
        if self.tolerations:
            placement["tolerations"] = [t.as_manifest() for t in self.tolerations]
        return placement


class InfraPlacementSpec(PlacementSpec):
    replicas: int | None = Field(default=None, ge=1, le=10)
    """virt-api / virt-controller replicas (KubeVirt's default: 2)."""


class KubeVirtSpec(Spec):
    install: Literal["managed", "external"] = "managed"
    """managed: this stack installs the operator and the KubeVirt CR. external ("bring
    your own"): KubeVirt is installed by someone else; the program only checks that its
    CRDs are registered before it creates VMs."""
    version: KubeVirtVersion = DEFAULT_KUBEVIRT_VERSION
    operator_manifest: OperatorManifestSpec = OperatorManifestSpec()
    feature_gates: list[FeatureGate] = []
    use_emulation: bool = False
    """Software emulation for clusters without /dev/kvm (dev, CI). Slow; never in production."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    uninstall_strategy: Literal["BlockUninstallIfWorkloadsExist", "RemoveWorkloads"] = "BlockUninstallIfWorkloadsExist"
    """Deleting the KubeVirt CR with RemoveWorkloads deletes every VM in the cluster."""
    launcher_seccomp_runtime_default: bool = True
    """Give virt-launcher pods the RuntimeDefault seccomp profile, which Pod Security
    `restricted` (our tenant namespaces) requires."""
    infra: InfraPlacementSpec = InfraPlacementSpec()
    """Where KubeVirt's own components (virt-api, virt-controller) run."""
    workloads: PlacementSpec = PlacementSpec()
    """Where virt-handler runs, and so which nodes can host VMs."""
