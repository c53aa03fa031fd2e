"""Everything a stack puts in its cluster, as one ordered list of objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..specs.stack import StackSpec
from ..upstream import UpstreamLoader
from .admission import build_admission
from .agent_sandbox import build_agent_sandbox
from .catalogue import build_catalogue
from .common import Manifest, apply_order
from .kubevirt import build_kubevirt
from .monitoring import build_monitoring
from .sandbox_template import build_cilium_network_policy, build_sandbox_template
from .sizing import build_pool_autoscaler
from .tenant import build_tenant
from .vm import build_vm_environment
from .warm_pool import build_warm_pool


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
    api_version = spec.agent_sandbox.api_version
    manifests = []
    if spec.agent_sandbox.install == "managed":
        manifests += build_agent_sandbox(spec.agent_sandbox, spec.cluster, loader)
    if spec.kubevirt is not None:
        manifests += build_kubevirt(spec.kubevirt, spec.cluster, loader)
    for tenant in spec.tenants:
        manifests += build_tenant(tenant)
    for template in spec.all_templates():
        manifests.append(build_sandbox_template(template, api_version))
        if (policy := build_cilium_network_policy(template)) is not None:
            manifests.append(policy)
    for pool in spec.all_warm_pools():
        template = spec.template(pool.template)
        manifests.append(build_warm_pool(pool, template, api_version))
        manifests += build_pool_autoscaler(pool, template, api_version)
    for runtime in spec.vm_runtimes():
        manifests += build_vm_environment(runtime)
    manifests += build_catalogue(spec)
    kubevirt_namespace = next((m["metadata"]["namespace"] for m in manifests if m["kind"] == "KubeVirt"), None)
    manifests += build_admission(spec, kubevirt_namespace)
    manifests += build_monitoring(spec)
    return apply_order(manifests)
