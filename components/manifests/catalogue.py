"""The runtime catalogue, published in the cluster as a ConfigMap (`runtimes.json`).

A gateway reads one shape per runtime id, whatever backs it: kind, namespace, what to
create a session from (a SandboxTemplate to claim, or a VM pool / VM), the warm
pool(s), the Service DNS name and the agent port. Capacity (replicas) is left out on
purpose: it changes with scaling, the catalogue says what exists and where. Gateway
service accounts of every
tenant may read exactly this ConfigMap, nothing else in its namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..specs.runtime import CatalogueSpec, PodRuntimeEntry, RuntimeCatalogueSpec, RuntimeSpec
from ..specs.template import TemplateSpec
from ..specs.tenant import TenantSpec
from ..specs.warm_pool import WarmPoolSpec
from .common import RESTRICTED_NAMESPACE_LABELS, Manifest, obj
from .kubevirt import KUBEVIRT_API_VERSION, POOL_API_VERSION
from .sandbox_template import EXTENSIONS_GROUP
from .tenant import GATEWAY_CATALOGUE_VERBS

CATALOGUE_KEY = "runtimes.json"
CATALOGUE_FORMAT = "sandbox-infra.dev/runtime-catalogue/v1"
READER_ROLE = "runtime-catalogue-reader"


@dataclass(frozen=True)
class PodRuntime:
    """A pod runtime as the catalogue lists it: the template a session claims and its warm pools."""

    id: str
    display_name: str
    template: TemplateSpec
    api_version: str
    """The agent-sandbox API version the template is written in (`v1beta1`)."""
    pools: tuple[str, ...] = ()
    """The warm pools that keep sandboxes of the template."""


def catalogue_entries(pods: list[PodRuntime], vms: list[RuntimeSpec], cluster_domain: str) -> dict[str, dict[str, Any]]:
    entries = {}
    for pod in pods:
        template = pod.template
        group_version = f"{EXTENSIONS_GROUP}/{pod.api_version}"
        entries[pod.id] = {
            "displayName": pod.display_name or pod.id,
            "executionKind": "pod",
            "namespace": template.tenant,
            # A session is a SandboxClaim naming this template; its Service is per sandbox
            # (Sandbox status.serviceFQDN), so there is no fixed Service name here.
            "template": {"apiVersion": group_version, "kind": "SandboxTemplate", "name": template.name},
            "warmPools": [{"apiVersion": group_version, "kind": "SandboxWarmPool", "name": p} for p in pod.pools],
            "serviceDns": None,
            "port": template.port,
        }
    for runtime in vms:
        vm = runtime.vm_config
        if vm is None or runtime.tenant is None:  # RuntimeSpec validation rules this out; never a traceback
            raise ConfigError(f"sandbox-infra:runtimes: VM runtime {runtime.id!r} needs vmConfig and tenant")
        single = vm.mode == "single"
        workload = {
            "apiVersion": KUBEVIRT_API_VERSION if single else POOL_API_VERSION,
            "kind": "VirtualMachine" if single else "VirtualMachinePool",
            "name": runtime.id,
        }
        entries[runtime.id] = {
            "displayName": runtime.display_name or runtime.id,
            "executionKind": runtime.execution_kind,
            "namespace": runtime.tenant,
            "template": workload,
            "warmPools": [] if single else [workload],
            "serviceDns": f"{runtime.id}.{runtime.tenant}.svc.{cluster_domain}",
            "port": vm.port,
        }
    return entries


def catalogue_json(entries: dict[str, dict[str, Any]]) -> str:
    document = {"format": CATALOGUE_FORMAT, "runtimes": entries}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def build_catalogue(cat: CatalogueSpec, pods: list[PodRuntime], vms: list[RuntimeSpec],
                    tenants: list[TenantSpec]) -> list[Manifest]:
    """The catalogue ConfigMap in `cat.namespace` (created unless it is one of `tenants`), and
    the Role and RoleBinding that let the gateway service accounts of `tenants` read it."""
    labels = {"app.kubernetes.io/part-of": "sandbox-infra", "app.kubernetes.io/component": "runtime-catalogue"}
    manifests = []
    if cat.namespace not in {t.name for t in tenants}:
        manifests.append(obj("v1", "Namespace", cat.namespace, labels={**labels, **RESTRICTED_NAMESPACE_LABELS}))
    document = catalogue_json(catalogue_entries(pods, vms, cat.cluster_domain))
    manifests.append(obj("v1", "ConfigMap", cat.name, cat.namespace, labels, data={CATALOGUE_KEY: document}))
    manifests.append(obj("rbac.authorization.k8s.io/v1", "Role", READER_ROLE, cat.namespace, labels, rules=[
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [cat.name], "verbs": list(GATEWAY_CATALOGUE_VERBS)},
    ]))
    subjects = sorted(
        ({"kind": "ServiceAccount", "name": sa.name, "namespace": sa.namespace or tenant.name}
         for tenant in tenants for sa in tenant.gateway_service_accounts),
        key=lambda s: (s["namespace"], s["name"]),
    )
    unique = [s for i, s in enumerate(subjects) if s not in subjects[:i]]
    if unique:
        manifests.append(obj(
            "rbac.authorization.k8s.io/v1", "RoleBinding", READER_ROLE, cat.namespace, labels,
            subjects=unique, roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER_ROLE},
        ))
    return manifests


def published_pods(spec: RuntimeCatalogueSpec, templates: list[tuple[TemplateSpec, str]],
                   pools: list[tuple[WarmPoolSpec, TemplateSpec]], where: str) -> list[PodRuntime]:
    """The pod runtimes of `spec.podRuntimes`, each resolved to one of `templates` (a template
    and the API version it is written in) and listing the `pools` of that template; without
    entries, every template under its own name. A template passed must be listed, and a pool's
    template passed: what is passed is what the catalogue says exists."""
    by_name = {t.name: (t, v) for t, v in templates}
    entries = spec.pod_runtimes or [PodRuntimeEntry(id=t.name) for t, _ in templates]
    allowed = ", ".join(map(repr, by_name)) or "none passed"
    pods, listed = [], set()
    for index, entry in enumerate(entries):
        name = entry.template or entry.id
        if name not in by_name:
            key = "template" if entry.template else "id"
            raise ConfigError(f"{where}: spec.podRuntimes[{index}].{key} = {name!r}: names no template passed in "
                              f"templates; allowed: {allowed}")
        template, api_version = by_name[name]
        listed.add(name)
        kept = tuple(p.name for p, t in pools if (t.name, t.tenant) == (template.name, template.tenant))
        pods.append(PodRuntime(entry.id, entry.display_name, template, api_version, kept))
    for index, (template, _) in enumerate(templates):
        if template.name not in listed:
            raise ConfigError(f"{where}: templates[{index}] ({template.name!r}) is passed but no spec.podRuntimes entry "
                              "lists it: add one, or do not pass it")
    for index, (pool, template) in enumerate(pools):
        if (template.name, template.tenant) not in {(t.name, t.tenant) for t, _ in templates}:
            raise ConfigError(f"{where}: pools[{index}] ({pool.name!r}) keeps sandboxes of template {template.name!r}, "
                              "which is not passed in templates")
    return pods
