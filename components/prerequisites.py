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
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .k8s import dependencies
from .manifests.agent_sandbox import CRD_FILES


def agent_sandbox_crd_names() -> list[str]:
    """`crds/<group>_<plural>.yaml` -> `<plural>.<group>`, the CRD's name."""
    names = []
    for path in CRD_FILES:
        group, _, plural = path.removeprefix("crds/").removesuffix(".yaml").partition("_")
        names.append(f"{plural}.{group}")
    return sorted(names)


@dataclass(frozen=True)
class RequiredCrdsArgs:
    crds: Sequence[str]
    """CRD names (`<plural>.<group>`) that must be registered."""
    installed_by: str
    """Who installs them, for the messages (`agent-sandbox`, `KubeVirt`, `KEDA`)."""


class RequiredCrds(pulumi.ComponentResource):
    """Reads each named CRD from the cluster; `ready` is what custom resources wait for."""

    crds: list[str]
    """The CRD names looked up."""
    ready: list[pulumi.Resource]
    """The lookups: custom resources of these CRDs wait for them, so a missing CRD stops the
    update at its read, before anything that needs it is sent."""

    def __init__(self, name: str, args: RequiredCrdsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:RequiredCrds", name, None, opts)
        names = sorted(set(args.crds))
        pulumi.log.info(
            f"{args.installed_by} is not managed by this stack: checking that its CRDs are registered: {', '.join(names)}",
            resource=self,
        )
        lookup = pulumi.ResourceOptions(parent=self, depends_on=dependencies(opts))
        self.ready = [
            k8s.apiextensions.v1.CustomResourceDefinition.get(f"{name}/{crd}", crd, opts=lookup) for crd in names
        ]
        self.crds = names
        self.register_outputs({"crds": names})
