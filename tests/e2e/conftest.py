"""Fixtures for the end-to-end tests: a live control plane built by tools/build.sh.

Every test here is marked `e2e` and skips, with the reason tools/build.sh recorded,
when a binary it needs is missing. `make test` runs the offline suite only; `make e2e`
runs these.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .controlplane import ControlPlane, control_plane
from .helpers import require, shipped_contexts

# Every Go process these tests start inherits this: etcd, kube-apiserver, the controller, and
# the Pulumi CLI, language hosts and provider. The suite is CPU-bound on 2 cores, and with the
# collector running at 400 % heap growth instead of 100 % a dev `up` on a fresh plane took
# 18 % less CPU in the engine's processes and 25 % less in the API server (docs/benchmarks.md),
# for memory these throwaway processes have to spare. Set GOGC to run with another value.
os.environ.setdefault("GOGC", "400")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    require("etcd", "kube-apiserver")
    with control_plane(tmp_path_factory.mktemp("plane"), shipped_contexts()) as started:
        yield started
