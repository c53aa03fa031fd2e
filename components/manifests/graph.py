"""The one graph of a stack: its components, each with its objects, the components passed to
it and what it waits for.

`stack_graph` is the only walk over a stack's spec. `deploy` (components/stack.py) creates
each part as its component, in order; the offline render (manifests/stack.py) lists each
part's objects. A component creates its objects with the same builder its part names here
(`*_objects` below), so the engine and the render agree by construction; the order inside a
component follows `KIND_TIERS` (common.py), the one place the order of kinds is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import ConfigError
from ..specs.agent_sandbox import AgentSandboxSpec
from ..specs.kubevirt import KubeVirtSpec
from ..specs.runtime import PodRuntimeEntry, RuntimeCatalogueSpec
from ..specs.stack import StackSpec
from ..specs.template import TemplateSpec
from ..specs.warm_pool import WarmPoolSpec
from ..upstream import UpstreamLoader
from .admission import build_admission
from .agent_sandbox import CRD_FILES, build_agent_sandbox
from .catalogue import build_catalogue, published_pods
from .common import Manifest
from .kubevirt import DATA_VOLUME_CRD, KUBEVIRT_CRD, POOL_CRD, VM_CRDS, build_kubevirt, operator_namespace
from .monitoring import PROMETHEUS_RULE_CRD, SERVICE_MONITOR_CRD, MonitoringScope, build_monitoring
from .sandbox_template import build_cilium_network_policy, build_sandbox_template
from .sizing import SCALED_OBJECT_CRD, build_pool_autoscaler
from .tenant import build_tenant
from .vm import build_vm_environment
from .warm_pool import build_warm_pool


# What each component creates: the builders its part and the component itself use.
def agent_sandbox_objects(spec: AgentSandboxSpec, wait_for_workloads: bool, loader: UpstreamLoader) -> list[Manifest]:
    return build_agent_sandbox(spec, wait_for_workloads, loader) if spec.install == "managed" else []


def kubevirt_objects(spec: KubeVirtSpec, wait_for_workloads: bool, loader: UpstreamLoader) -> list[Manifest]:
    return build_kubevirt(spec, wait_for_workloads, loader) if spec.install == "managed" else []


def template_objects(spec: TemplateSpec, api_version: str) -> list[Manifest]:
    policy = build_cilium_network_policy(spec)
    return [build_sandbox_template(spec, api_version), *([policy] if policy is not None else [])]


def warm_pool_objects(spec: WarmPoolSpec, template: TemplateSpec, api_version: str) -> list[Manifest]:
    return [build_warm_pool(spec, template, api_version), *build_pool_autoscaler(spec, template, api_version)]


def monitoring_scope(spec: StackSpec) -> MonitoringScope:
    """What a stack's Monitoring watches: every pool of the stack, with its template."""
    return MonitoringScope(spec.monitoring, tuple((p, spec.template(p.template)) for p in spec.all_warm_pools()),
                           spec.agent_sandbox.version, spec.cluster.name)


def catalogue_spec(spec: StackSpec) -> RuntimeCatalogueSpec:
    """A stack's `catalogue` settings with its pod runtimes, as its RuntimeCatalogue takes them."""
    pods = [PodRuntimeEntry(id=r.id, display_name=r.display_name, template=r.sandbox_template or r.id)
            for r in spec.runtimes if r.execution_kind == "pod"]
    return RuntimeCatalogueSpec(**dict(spec.catalogue), pod_runtimes=pods)


def agent_sandbox_crd_names() -> list[str]:
    """`crds/<group>_<plural>.yaml` -> `<plural>.<group>`, the CRD's name."""
    names = []
    for path in CRD_FILES:
        group, _, plural = path.removeprefix("crds/").removesuffix(".yaml").partition("_")
        names.append(f"{plural}.{group}")
    return sorted(names)


KUBEVIRT_CRDS = [KUBEVIRT_CRD, *VM_CRDS, POOL_CRD]
CDI = "CDI (containerized data importer)"
PROMETHEUS_OPERATOR = "Prometheus Operator"


def required_crds(spec: StackSpec) -> dict[str, list[str]]:
    """CRDs that someone other than this stack must have installed, by who installs them:
    bring-your-own agent-sandbox and KubeVirt, KEDA for KEDA-scaled pools, CDI for VM disks
    (neither this stack nor KubeVirt installs it), the Prometheus Operator for monitoring.
    The program looks each up before creating what needs it; `doctor` checks them before a run."""
    needed: dict[str, list[str]] = {}
    if spec.agent_sandbox.install == "external":
        needed["agent-sandbox"] = agent_sandbox_crd_names()
    if spec.kubevirt is not None and spec.kubevirt.install == "external":
        needed["KubeVirt"] = KUBEVIRT_CRDS
    if any(p.autoscaler_engine == "keda" for p in spec.all_warm_pools()):
        needed["KEDA"] = [SCALED_OBJECT_CRD]
    if any(r.vm_config and r.vm_config.disks for r in spec.vm_runtimes()):
        needed[CDI] = [DATA_VOLUME_CRD]
    if spec.monitoring.enabled:  # ServiceMonitor and PrometheusRule (the dashboard is a ConfigMap)
        needed[PROMETHEUS_OPERATOR] = [PROMETHEUS_RULE_CRD, SERVICE_MONITOR_CRD]
    return needed


@dataclass
class Part:
    """One component of the stack."""

    component: str
    """Its class in `components` (`SandboxTemplate`); its args class is `<component>Args`."""
    name: str
    """Its Pulumi name (part of every URN below it: keep it stable)."""
    build: Callable[[], list[Manifest]]
    """Its Kubernetes objects, as the component creates them."""
    args: dict[str, Any] = field(default_factory=dict)
    """Its plain args fields (`spec`, `wait_for_workloads`, ...)."""
    refs: dict[str, str] = field(default_factory=dict)
    """Args fields that take another component: field -> that part's key."""
    needs: list[str] = field(default_factory=list)
    """Keys of the parts it depends on besides those (`opts.depends_on`)."""
    list_refs: dict[str, list[str]] = field(default_factory=dict)
    """Args fields that take a list of other components: field -> those parts' keys."""

    @property
    def key(self) -> str:
        return f"{self.component}:{self.name}"

    @cached_property
    def objects(self) -> list[Manifest]:
        return self.build()


def stack_graph(spec: StackSpec, loader: UpstreamLoader, lookups: bool = True) -> list[Part]:
    """The stack's components in creation order (every part after the parts it names).
    `lookups`: include the reads of CRDs someone else installs (off for render-only stacks:
    there is no cluster to read, whoever applies the YAML checks it with `doctor`)."""
    parts: list[Part] = []
    wait = spec.cluster.wait_for_workloads
    external = required_crds(spec) if lookups else {}

    def lookup(name: str, installed_by: str) -> list[str]:
        if installed_by not in external:
            return []
        parts.append(Part("RequiredCrds", name, list, {"crds": external[installed_by], "installed_by": installed_by}))
        return [parts[-1].key]

    install_spec = spec.agent_sandbox
    if install_spec.install == "external" and not lookups:
        install_spec = install_spec.model_copy(update={"install": "none"})  # nothing to create, nothing to read
    install = Part("AgentSandbox", "agent-sandbox", lambda: agent_sandbox_objects(install_spec, wait, loader),
                   {"spec": install_spec, "wait_for_workloads": wait, "loader": loader})
    parts.append(install)
    kubevirt = None
    if spec.kubevirt is not None:
        kubevirt_spec = spec.kubevirt
        kubevirt = Part("KubeVirt", "kubevirt", lambda: kubevirt_objects(kubevirt_spec, wait, loader),
                        {"spec": kubevirt_spec, "wait_for_workloads": wait, "loader": loader})
        parts.append(kubevirt)

    tenants: dict[str, Part] = {}
    for tenant in spec.tenants:
        tenants[tenant.name] = Part("Tenant", tenant.name, lambda t=tenant: build_tenant(t), {"spec": tenant})
        parts.append(tenants[tenant.name])

    api_version = spec.agent_sandbox.api_version
    templates: dict[str, Part] = {}
    for template in spec.all_templates():
        templates[template.name] = Part(
            "SandboxTemplate", template.name, lambda t=template: template_objects(t, api_version), {"spec": template},
            {"install": install.key, "tenant": _tenant(tenants, template.tenant, f"template {template.name!r}").key})
        parts.append(templates[template.name])
    keda = lookup("keda-crds", "KEDA")
    pools: dict[str, Part] = {}
    for pool in spec.all_warm_pools():
        template = spec.template(pool.template)
        pools[pool.name] = Part(
            "WarmPool", pool.name, lambda p=pool, t=template: warm_pool_objects(p, t, api_version),
            {"spec": pool, "wait_for_workloads": wait},
            {"template": templates[template.name].key, **({"keda": keda[0]} if keda and pool.autoscaler_engine == "keda" else {})})
        parts.append(pools[pool.name])

    cdi = lookup("cdi-crds", CDI)
    vms: dict[str, Part] = {}
    for runtime in spec.vm_runtimes():
        refs = {"tenant": _tenant(tenants, runtime.tenant, f"runtime {runtime.id!r}").key}
        if kubevirt is not None:
            refs["kubevirt"] = kubevirt.key
        vms[runtime.id] = Part("VmEnvironment", runtime.id, lambda r=runtime: build_vm_environment(r), {"spec": runtime},
                               refs, cdi)
        parts.append(vms[runtime.id])
    if spec.runtimes:
        # The templates the pod runtimes publish, the pools of those, and the VM environments.
        cat = catalogue_spec(spec)
        published = list(dict.fromkeys(entry.template or entry.id for entry in cat.pod_runtimes))
        listed_pools = [p for p in spec.all_warm_pools() if p.template in published]

        def catalogue() -> list[Manifest]:
            pods = published_pods(cat, [(spec.template(t), api_version) for t in published],
                                  [(p, spec.template(p.template)) for p in listed_pools], "sandbox-infra:catalogue")
            return build_catalogue(cat, pods, spec.vm_runtimes(), spec.tenants)

        parts.append(Part("RuntimeCatalogue", spec.catalogue.name, catalogue, {"spec": cat}, list_refs={
            "templates": [templates[t].key for t in published], "pools": [pools[p.name].key for p in listed_pools],
            "vm_environments": [vms[r.id].key for r in spec.vm_runtimes()], "tenants": [t.key for t in tenants.values()]}))
    if spec.policy.admission != "off":
        cluster, environment = spec.cluster.name, spec.cluster.environment

        def admission() -> list[Manifest]:
            managed = kubevirt is not None and kubevirt.objects
            return build_admission(spec.policy, environment, cluster, list(tenants),
                                   operator_namespace(kubevirt.objects) if managed else None)  # type: ignore[union-attr]

        parts.append(Part("AdmissionPolicies", "admission", admission,
                          {"spec": spec.policy, "cluster": cluster, "environment": environment},
                          {"kubevirt": kubevirt.key} if kubevirt is not None else {},
                          list_refs={"tenants": [t.key for t in tenants.values()]}))
    if spec.monitoring.enabled:
        crds = lookup("prometheus-operator-crds", PROMETHEUS_OPERATOR)
        parts.append(Part("Monitoring", "monitoring", lambda: build_monitoring(monitoring_scope(spec)),
                          {"spec": spec.monitoring, "cluster": spec.cluster.name},
                          {"install": install.key, **({"crds": crds[0]} if crds else {})},
                          list_refs={"pools": [p.key for p in pools.values()]}))
    return parts


def _tenant(tenants: dict[str, Part], name: str | None, what: str) -> Part:
    if name not in tenants:  # spec validation rules this out; never a traceback under the engine
        raise ConfigError(f"sandbox-infra:tenants: {what} names no tenant of this stack ({name!r})")
    return tenants[name]
