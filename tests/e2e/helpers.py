"""Helpers shared by the e2e tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import STACKS_DIR, load_stack
from components.upstream import UpstreamLoader
from sandbox_infra.fleet import load_fleet

from .toolchain import missing_reason

# The stacks of the shipped fleet (a developer's own untracked stack file is not one).
SHIPPED_STACKS = load_fleet().stacks


def require(*binaries: str) -> None:
    reason = missing_reason(*binaries)
    if reason:
        pytest.skip(reason)


def render(stack: str, stacks_dir: Path = STACKS_DIR) -> list[Manifest]:
    return render_stack(load_stack(stack, stacks_dir), UpstreamLoader())


def shipped_contexts() -> list[str]:
    """The kubeconfig contexts the shipped stacks name (staging and prod target their cluster's
    context); the e2e kubeconfig maps each of them to the local control plane."""
    return [context for stack in SHIPPED_STACKS if (context := load_stack(stack).cluster.provider.context)]
