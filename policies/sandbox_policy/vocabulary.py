"""The words the rules and the builders share: object type, environments, our label and
annotation keys, reserved key domains, image references, forbidden networks.

They live with the rules because the rules must stand alone (the pack is installed
without the program); the program's builders and specs import them from here, so a key
the builders write is by construction the key the rules read.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

Manifest = dict[str, Any]
"""A Kubernetes object as a mapping (a rendered manifest, or a resource's inputs)."""

Environment = Literal["dev", "staging", "prod"]
Enforcement = Literal["advisory", "mandatory"]

# Our own label/annotation domain (reserved: user config cannot set keys under it).
DOMAIN = "sandbox-infra.dev"

# Intent that is not part of the Kubernetes object itself, written by the builders so
# that the policy rules (which only see manifests) can check it.
TRUST_ANNOTATION = f"{DOMAIN}/trust"
"""`trusted` or `untrusted` on a SandboxTemplate; anything but `trusted` counts as untrusted."""
EGRESS_ENFORCER_ANNOTATION = f"{DOMAIN}/egress-enforcer"
"""What enforces egress for a template whose NetworkPolicy is Unmanaged (e.g. `cilium`)."""
ALLOWED_DOMAINS_ANNOTATION = f"{DOMAIN}/allowed-domains"
TENANT_LABEL = f"{DOMAIN}/tenant"
"""On a tenant namespace (and the stack's objects in it): the namespaces admission policies guard."""
MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "sandbox-infra")
"""On every object the stack creates."""
CILIUM_ENFORCER = "cilium"
"""The external enforcer the stack itself renders policies for: a template with it gets a
CiliumNetworkPolicy selecting its pods by the TEMPLATE_LABEL."""
TEMPLATE_LABEL = f"{DOMAIN}/template"
"""On a template's pods (and the template): the name of the SandboxTemplate they come from."""
GPU_OPT_IN_ANNOTATION = f"{DOMAIN}/allow-gpu"
"""`true` on a warm pool whose template requests GPUs: idle GPU sandboxes are an explicit choice."""

# Prefixes owned by Kubernetes, agent-sandbox, KubeVirt and Pulumi. The controllers
# read labels under these prefixes (for example the pod-template hash and the claim
# identity), so user config must never set them.
RESERVED_KEY_DOMAINS = (
    "agents.x-k8s.io",
    "extensions.agents.x-k8s.io",
    "x-k8s.io",
    "k8s.io",
    "kubernetes.io",
    "kubevirt.io",
    "pulumi.com",
    DOMAIN,
)


def reserved_domain(key: str) -> str | None:
    """The reserved domain a label/annotation key falls under, or None."""
    if "/" not in key:
        return None
    prefix = key.split("/", 1)[0]
    for domain in RESERVED_KEY_DOMAINS:
        if prefix == domain or prefix.endswith("." + domain):
            return domain
    return None


_IMAGE = re.compile(
    r"^(?P<name>([a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[\w][\w.-]{0,127}))?(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)

IMAGE_PATTERN = _IMAGE.pattern
"""The same grammar for the admission CEL (RE2 reads this pattern as Python does)."""


def parse_image(value: str) -> tuple[str, str | None, str | None] | None:
    """(name, tag, digest) of an image reference, or None when it is not one."""
    match = _IMAGE.match(value)
    return None if match is None else (match["name"], match["tag"], match["digest"])


# Cloud metadata endpoints live in the link-local ranges. A sandbox that reaches
# them can read node credentials, so no egress rule may ever include them.
METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("fe80::/10"),
)

IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
"""IPv4-mapped IPv6 addresses (RFC 4291 2.5.5.2): `::ffff:169.254.169.254` and `::ffff:a9fe:a9fe`
are 169.254.169.254 to a dual-stack socket, and network plugins that parse CIDRs with Go's net
package may program them as the IPv4 range."""


def as_ipv4(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4-mapped IPv6 network as the IPv4 network it names (`::ffff:a9fe:0/112` is
    169.254.0.0/16, `::ffff:0:0/96` is 0.0.0.0/0); any other network unchanged."""
    mapped = network.network_address.ipv4_mapped if isinstance(network, ipaddress.IPv6Network) else None
    if mapped is None or network.prefixlen < IPV4_MAPPED.prefixlen:
        return network
    return ipaddress.IPv4Network((mapped, network.prefixlen - IPV4_MAPPED.prefixlen))


def metadata_network_of(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The metadata range `network` (in any spelling) lies inside, or None."""
    network = as_ipv4(network)
    return next((m for m in METADATA_NETWORKS if m.version == network.version and network.subnet_of(m)), None)  # type: ignore[arg-type]

