"""Helpers shared by the e2e tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import STACKS_DIR, available_stacks, load_stack
from components.upstream import UpstreamLoader

from .toolchain import missing_reason

SHIPPED_STACKS = available_stacks()


def require(*binaries: str) -> None:
    reason = missing_reason(*binaries)
    if reason:
        pytest.skip(reason)


def render(stack: str, stacks_dir: Path = STACKS_DIR) -> list[Manifest]:
    return render_stack(load_stack(stack, stacks_dir), UpstreamLoader())
