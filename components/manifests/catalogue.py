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
from typing import Any

from ..errors import ConfigError
from ..specs.stack import StackSpec
from .common import RESTRICTED_NAMESPACE_LABELS, Manifest, obj
from .kubevirt import KUBEVIRT_API_VERSION, POOL_API_VERSION
from .sandbox_template import EXTENSIONS_GROUP
from .tenant import GATEWAY_CATALOGUE_VERBS

CATALOGUE_KEY = "runtimes.json"
CATALOGUE_FORMAT = "sandbox-infra.dev/runtime-catalogue/v1"
READER_ROLE = "runtime-catalogue-reader"


def catalogue_entries(spec: StackSpec) -> dict[str, dict[str, Any]]:
    entries = {}
    for runtime in spec.runtimes:
        entry: dict[str, Any] = {
            "displayName": runtime.display_name or runtime.id,
            "executionKind": runtime.execution_kind,
        }
        if runtime.execution_kind == "pod":
            template = spec.template(runtime.sandbox_template or runtime.id)
            pools = [p for p in spec.all_warm_pools() if p.template == template.name]
            group_version = f"{EXTENSIONS_GROUP}/{spec.agent_sandbox.api_version}"
            entry |= {
                "namespace": template.tenant,
                # A session is a SandboxClaim naming this template; its Service is per sandbox
                # (Sandbox status.serviceFQDN), so there is no fixed Service name here.
                "template": {"apiVersion": group_version, "kind": "SandboxTemplate", "name": template.name},
                "warmPools": [{"apiVersion": group_version, "kind": "SandboxWarmPool", "name": p.name} for p in pools],
                "serviceDns": None,
                "port": template.port,
            }
        else:
            vm = runtime.vm_config
            if vm is None or runtime.tenant is None:  # RuntimeSpec validation rules this out; never a traceback
                raise ConfigError(f"sandbox-infra:runtimes: VM runtime {runtime.id!r} needs vmConfig and tenant")
            single = vm.mode == "single"
            workload = {
                "apiVersion": KUBEVIRT_API_VERSION if single else POOL_API_VERSION,
                "kind": "VirtualMachine" if single else "VirtualMachinePool",
                "name": runtime.id,
            }
            entry |= {
                "namespace": runtime.tenant,
                "template": workload,
                "warmPools": [] if single else [workload],
                "serviceDns": f"{runtime.id}.{runtime.tenant}.svc.{spec.catalogue.cluster_domain}",
                "port": vm.port,
            }
        entries[runtime.id] = entry
    return entries


def catalogue_json(spec: StackSpec) -> str:
    document = {"format": CATALOGUE_FORMAT, "runtimes": catalogue_entries(spec)}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def build_catalogue(spec: StackSpec) -> list[Manifest]:
    if not spec.runtimes:
        return []
    cat = spec.catalogue
    labels = {"app.kubernetes.io/part-of": "sandbox-infra", "app.kubernetes.io/component": "runtime-catalogue"}
    manifests = []
    if cat.namespace not in {t.name for t in spec.tenants}:
        manifests.append(obj("v1", "Namespace", cat.namespace, labels={**labels, **RESTRICTED_NAMESPACE_LABELS}))
    manifests.append(obj("v1", "ConfigMap", cat.name, cat.namespace, labels, data={CATALOGUE_KEY: catalogue_json(spec)}))
    manifests.append(obj("rbac.authorization.k8s.io/v1", "Role", READER_ROLE, cat.namespace, labels, rules=[
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [cat.name], "verbs": list(GATEWAY_CATALOGUE_VERBS)},
    ]))
    subjects = sorted(
        ({"kind": "ServiceAccount", "name": sa.name, "namespace": sa.namespace or tenant.name}
         for tenant in spec.tenants for sa in tenant.gateway_service_accounts),
        key=lambda s: (s["namespace"], s["name"]),
    )
    unique = [s for i, s in enumerate(subjects) if s not in subjects[:i]]
    if unique:
        manifests.append(obj(
            "rbac.authorization.k8s.io/v1", "RoleBinding", READER_ROLE, cat.namespace, labels,
            subjects=unique, roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER_ROLE},
        ))
    return manifests
