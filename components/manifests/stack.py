"""Everything a stack puts in its cluster, as one ordered list of objects: the objects of its
graph (graph.py), the one `pulumi up` creates."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..specs.stack import StackSpec
from ..upstream import UpstreamLoader
from .common import Manifest, apply_order
from .graph import stack_graph


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Builders allocate plain, acyclic dicts and lists, which reference counting frees. The
    cyclic collector can find nothing in them, yet each collection during a render walked
    every object still alive, so rendering a fleet while holding its objects was
    super-linear (docs/benchmarks.md). Collection resumes after the render."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def render_stack(spec: StackSpec, loader: UpstreamLoader) -> list[Manifest]:
    with _no_cycle_collection():
        return _render(spec, loader)


def _render(spec: StackSpec, loader: UpstreamLoader) -> list[Manifest]:
    """The objects of the stack's graph (graph.py), which `deploy` creates: no lookups, which
    read the cluster and put nothing in it."""
    return apply_order([m for part in stack_graph(spec, loader, lookups=False) for m in part.objects])
