"""Bring-your-own installs: check that the CRDs the stack's custom resources need are
registered in the cluster before any of those resources is created.

Each CRD is read with `CustomResourceDefinition.get`, a real lookup through the
stack's Kubernetes provider (under test mocks, the mock answers it). Custom
resources depend on these reads, so a missing CRD stops the preview or update at
the read, whose error names that CRD (`resource '<crd name>' does not exist`),
before anything that needs it is sent to the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .manifests.agent_sandbox import CRD_FILES


def agent_sandbox_crd_names() -> list[str]:
    """`crds/<group>_<plural>.yaml` -> `<plural>.<group>`, the CRD's name."""
    names = []
    for path in CRD_FILES:
        group, _, plural = path.removeprefix("crds/").removesuffix(".yaml").partition("_")
        names.append(f"{plural}.{group}")
    return sorted(names)


class RequiredCrds(pulumi.ComponentResource):
    """Reads each named CRD from the cluster; `ready` is what custom resources wait for."""

    def __init__(self, name: str, crds: Sequence[str], installed_by: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:RequiredCrds", name, None, opts)
        names = sorted(set(crds))
        pulumi.log.info(
            f"{installed_by} is not managed by this stack: checking that its CRDs are registered: {', '.join(names)}",
            resource=self,
        )
        self.ready: list[pulumi.Resource] = [
            k8s.apiextensions.v1.CustomResourceDefinition.get(f"{name}/{crd}", crd, opts=pulumi.ResourceOptions(parent=self))
            for crd in names
        ]
        self.register_outputs({"crds": names})
