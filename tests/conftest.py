"""Shared fixtures: the pinned upstream mirror, loaders and small config documents."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.specs.loader import available_stacks, load_layered
from components.upstream import UpstreamLoader, upstream_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (the property tests: 10,000 inputs, about a third of the suite):
    `make test` spreads the suite over the cores (pytest-xdist), and a long test that starts
    last keeps one core busy after the other has finished. Otherwise the order is unchanged."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def no_selected_stack(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The command line falls back to PULUMI_STACK and the stack `pulumi stack select` chose:
    tests must not depend on the machine's."""
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path_factory.mktemp("pulumi-home")))


@pytest.fixture(scope="session")
def upstream() -> Path:
    path = upstream_dir()
    if not (path / "agent-sandbox").is_dir():
        pytest.skip(f"pinned upstream mirror not found at {path} (set UPSTREAM_DIR to ../shared/upstream)")
    return path


@pytest.fixture(scope="session")
def loader(upstream: Path, tmp_path_factory: pytest.TempPathFactory) -> UpstreamLoader:
    # Downloads off: tests must prove the offline path, never reach the network.
    return UpstreamLoader(mirror=upstream, cache=tmp_path_factory.mktemp("cache"), allow_download=False)


SHIPPED_STACKS = available_stacks()


def stack_config(stack: str) -> dict[str, Any]:
    """The effective (layered) config mapping of a shipped stack, for tests to vary."""
    return copy.deepcopy(load_layered(stack)[0].config)


@pytest.fixture
def minimal_config() -> dict[str, Any]:
    return {
        "cluster": {"name": "test", "environment": "dev"},
        "tenants": [{"name": "team-a", "gatewayServiceAccounts": [{"name": "gateway"}]}],
        "templates": [{
            "name": "python",
            "tenant": "team-a",
            "image": "ghcr.io/example/python:3.12",
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        }],
        "warmPools": [{"name": "python", "template": "python", "replicas": 2}],
    }
