"""SandboxTemplate: the hardened pod every sandbox of a template starts from."""

from __future__ import annotations

import ipaddress
from typing import Any

from ..specs.network import METADATA_NETWORKS, NetworkSpec
from ..specs.template import TemplateSpec
from .common import (
    ALLOWED_DOMAINS_ANNOTATION,
    CILIUM_ENFORCER,
    EGRESS_ENFORCER_ANNOTATION,
    EXTENSIONS_GROUP,
    SKIP_AWAIT,
    TEMPLATE_LABEL,
    TRUST_ANNOTATION,
    Manifest,
    obj,
)

CONTAINER = "sandbox"
KUBE_DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def template_labels(template: TemplateSpec) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "sandbox-infra", TEMPLATE_LABEL: template.name}


def build_sandbox_template(template: TemplateSpec, api_version: str) -> Manifest:
    annotations = {SKIP_AWAIT: "true", **template.annotations, TRUST_ANNOTATION: template.trust}
    if template.network.egress.domains:
        annotations[ALLOWED_DOMAINS_ANNOTATION] = ",".join(template.network.egress.domains)
    if template.network.external_enforcer:
        annotations[EGRESS_ENFORCER_ANNOTATION] = template.network.external_enforcer
    spec: dict[str, Any] = {
        "podTemplate": {
            "metadata": {"labels": {**template.labels, **template_labels(template)}},
            "spec": pod_spec(template),
        },
        "envVarsInjectionPolicy": template.env_vars_injection_policy,
        "networkPolicyManagement": template.network.management,
    }
    if template.network.management == "Managed":
        spec["networkPolicy"] = network_policy(template.network, template.tenant, template.port)
    return obj(
        f"{EXTENSIONS_GROUP}/{api_version}", "SandboxTemplate", template.name, template.tenant,
        labels={**template.labels, **template_labels(template)}, annotations=annotations, spec=spec,
    )


def pod_spec(template: TemplateSpec) -> dict[str, Any]:
    container: dict[str, Any] = {"name": CONTAINER, "image": template.image}
    if template.command:
        container["command"] = list(template.command)
    if template.args:
        container["args"] = list(template.args)
    container["ports"] = [{"name": "agent", "containerPort": template.port, "protocol": "TCP"}]
    if template.readiness_path:
        container["readinessProbe"] = {"httpGet": {"path": template.readiness_path, "port": "agent"},
                                       "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 3}
    if template.env:
        container["env"] = [_env(e) for e in template.env]
    container["resources"] = template.resources.as_manifest()
    user = {} if template.run_as_user is None else {"runAsUser": template.run_as_user}
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": template.read_only_root_filesystem,
        "runAsNonRoot": True,
        **user,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["volumeMounts"] = [{"name": "scratch", "mountPath": "/tmp"}]
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # sandboxed code gets no Kubernetes API identity
        "enableServiceLinks": False,  # no env vars leaking the namespace's Services
        "securityContext": {
            "runAsNonRoot": True,
            **({} if template.run_as_user is None else {
                "runAsUser": template.run_as_user, "runAsGroup": template.run_as_user, "fsGroup": template.run_as_user}),
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": str(template.scratch_size)}}],
    }
    if template.runtime_class_name:
        spec["runtimeClassName"] = template.runtime_class_name
    return spec


def _env(env: Any) -> dict[str, Any]:
    if env.secret_key_ref is not None:
        ref = env.secret_key_ref
        return {"name": env.name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    return {"name": env.name, "value": env.value}


def network_policy(network: NetworkSpec, tenant: str, port: int) -> dict[str, Any]:
    """Ingress only to the agent port from the allowed namespaces; egress only to DNS
    and the allowlisted CIDRs, with the cloud metadata ranges carved out."""
    sources = network.ingress.from_namespaces or [tenant]
    ingress = [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}} for ns in sources],
        "ports": [{"port": port, "protocol": "TCP"}],
    }]
    egress: list[dict[str, Any]] = []
    if network.allow_dns:
        egress.append({"to": [KUBE_DNS_PEER], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]})
    if network.egress.cidrs:
        egress.append({
            "to": [{"ipBlock": _ip_block(cidr)} for cidr in network.egress.cidrs],
            "ports": [{"port": p.port, "protocol": p.protocol} for p in network.egress.ports],
        })
    return {"ingress": ingress, "egress": egress}


# Cilium's labels for the cluster DNS pods (its docs' DNS-visibility example).
KUBE_DNS_ENDPOINT = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}


def build_cilium_network_policy(template: TemplateSpec) -> Manifest | None:
    """The CiliumNetworkPolicy that enforces the network allowlist of an Unmanaged template
    whose enforcer is Cilium (None for every other template): the allowlist is otherwise
    only an annotation. Unmanaged hands the template's whole policy to the enforcer, so it
    carries the ingress of the Managed policy too: without it the tenant's default-deny
    would keep the gateway from the agent port."""
    network = template.network
    if network.management != "Unmanaged" or network.external_enforcer != CILIUM_ENFORCER:
        return None
    sources = network.ingress.from_namespaces or [template.tenant]
    ports = [{"ports": [{"port": str(p.port), "protocol": p.protocol} for p in network.egress.ports]}]
    egress: list[dict[str, Any]] = []
    if network.allow_dns:
        # Cilium learns the addresses behind toFQDNs from the DNS answers it sees: DNS goes
        # through its proxy (the `dns` rule), to the cluster DNS only.
        dns = {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}
        egress.append({"toEndpoints": [KUBE_DNS_ENDPOINT], "toPorts": [dns]})
    if network.egress.domains:
        # toFQDNs may not share an egress rule with other to* selectors (the CRD says so).
        names = [{"matchPattern": d} if d.startswith("*.") else {"matchName": d} for d in network.egress.domains]
        egress.append({"toFQDNs": names, "toPorts": ports})
    if network.egress.cidrs:
        egress.append({"toCIDRSet": [_ip_block(cidr) for cidr in network.egress.cidrs], "toPorts": ports})
    spec: dict[str, Any] = {
        "description": f"Network allowlist of SandboxTemplate {template.tenant}/{template.name} (sandbox-infra)",
        "endpointSelector": {"matchLabels": {TEMPLATE_LABEL: template.name}},
        # Deny by default in both directions even where a list below is empty.
        "enableDefaultDeny": {"ingress": True, "egress": True},
        "ingress": [{
            "fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": ns}} for ns in sources],
            "toPorts": [{"ports": [{"port": str(template.port), "protocol": "TCP"}]}],
        }],
    }
    if egress:
        spec["egress"] = egress
    return obj("cilium.io/v2", "CiliumNetworkPolicy", f"{template.name}-network-policy", template.tenant,
               labels=template_labels(template), spec=spec)


def _ip_block(cidr: str) -> dict[str, Any]:
    network = ipaddress.ip_network(cidr)
    carved = [
        str(blocked) for blocked in METADATA_NETWORKS
        if blocked.version == network.version and blocked.subnet_of(network)  # type: ignore[arg-type]
    ]
    return {"cidr": cidr, "except": carved} if carved else {"cidr": cidr}
