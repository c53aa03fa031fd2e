"""Helpers shared by the e2e tests."""

from __future__ import annotations

import pytest

from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import STACKS_DIR, load_stack
from components.upstream import UpstreamLoader

from .kube import Kube, wait_established
from .toolchain import missing_reason

SHIPPED_STACKS = sorted(p.name.split(".")[1] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def require(*binaries: str) -> None:
    reason = missing_reason(*binaries)
    if reason:
        pytest.skip(reason)


def render(stack: str) -> list[Manifest]:
    return render_stack(load_stack(stack), UpstreamLoader())


def apply_all(kube: Kube, manifests: list[Manifest]) -> None:
    """Apply in the rendered (dependency) order; CRDs must be Established before their CRs."""
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    crd_groups = {crd["spec"]["group"] for crd in crds}
    waited = False
    for manifest in manifests:
        if not waited and manifest["apiVersion"].split("/")[0] in crd_groups:
            wait_established(kube, crds)
            waited = True
        kube.apply(manifest)
