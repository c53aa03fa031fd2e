"""Shared helpers for the policy tests: examples, shipped stacks, upstream files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox_policy import Context
from sandbox_policy.rule import STRICT_POLICY
from sandbox_policy.settings import PolicySpec

from components.manifests.stack import render_stack
from components.specs.loader import load_stack
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader, upstream_dir

from .conftest import SHIPPED_STACKS

__all__ = ["EXAMPLES", "SHIPPED_STACKS", "documents", "example_context", "require_upstream", "shipped", "upstream_documents"]

EXAMPLES = Path(__file__).parent / "policy_examples"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def example_context(rule_name: str) -> Context:
    """Strict defaults, overridden by the example's context.yaml (environment, policy settings)."""
    path = EXAMPLES / rule_name / "context.yaml"
    if not path.is_file():
        return Context(source="examples")
    data = yaml.safe_load(path.read_text()) or {}
    policy = PolicySpec.model_validate({**STRICT_POLICY.model_dump(by_alias=True), **data.get("policy", {})})
    return Context(environment=data.get("environment", "prod"), policy=policy, source="examples")


def require_upstream() -> Path:
    path = upstream_dir()
    if not (path / "agent-sandbox").is_dir():
        pytest.skip(f"pinned upstream mirror not found at {path} (set UPSTREAM_DIR to ../shared/upstream)")
    return path


@cache
def shipped(stack: str) -> tuple[StackSpec, tuple[dict[str, Any], ...]]:
    """A shipped stack's spec and rendered objects (read-only: deep-copy before mutating)."""
    spec = load_stack(stack)
    loader = UpstreamLoader(mirror=require_upstream(), allow_download=False)  # offline only
    return spec, tuple(render_stack(spec, loader))


def upstream_documents(*relative: str) -> list[dict[str, Any]]:
    base = require_upstream()
    docs: list[dict[str, Any]] = []
    for name in relative:
        docs += [d for d in yaml.load_all((base / name).read_bytes(), Loader=yaml.CSafeLoader) if d]
    return docs
