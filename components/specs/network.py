"""Sandbox network access: an allowlist turned into NetworkPolicy rules."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator
from sandbox_policy.vocabulary import CILIUM_ENFORCER, METADATA_NETWORKS, as_ipv4

from .base import DnsLabel, Spec

_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def normalise_domain(value: str) -> str:
    """`https://api.example.com:443/v1`, `api.example.com:443` and `API.example.com.`
    all mean the host name `api.example.com`: a network policy can only ever act on
    the host, never on scheme, port or path."""
    text = value.strip()
    host = urlsplit(text).hostname if "://" in text else text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    host = (host or "").lower().rstrip(".")
    if not _HOSTNAME.match(host):
        raise ValueError("must be a host name, host:port or URL such as https://api.example.com")
    return host


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32") from None
    # An IPv4-mapped spelling (::ffff:169.254.169.254/128) is judged as the IPv4 range it names.
    ipv4 = as_ipv4(network)
    spelled = f" (the IPv4-mapped spelling of {ipv4})" if ipv4 is not network else ""
    for blocked in METADATA_NETWORKS:
        if ipv4.version != blocked.version:
            continue
        if ipv4.subnet_of(blocked):  # type: ignore[arg-type]
            raise ValueError(
                f"is inside the link-local / cloud metadata range {blocked}{spelled}, which sandboxes must never reach"
            )
        if spelled and blocked.subnet_of(ipv4):  # type: ignore[arg-type]
            # Carving the range out of a mapped spelling relies on every network plugin reading
            # `except` the same way; the IPv4 spelling is carved out everywhere.
            raise ValueError(f"is the IPv4-mapped spelling of {ipv4}, which contains the link-local / cloud "
                             f"metadata range {blocked}: write it as {ipv4}, from which the stack carves that range out")
    return str(network)


Cidr = Annotated[str, AfterValidator(_cidr)]
Domain = Annotated[str, AfterValidator(normalise_domain)]


class PortSpec(Spec):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class EgressSpec(Spec):
    cidrs: list[Cidr] = []
    ports: list[PortSpec] = [PortSpec(port=443)]
    domains: list[Domain] = []
    """Host names the sandbox may reach. NetworkPolicy cannot match names, so these need
    `cidrs` (Managed) or an external enforcer such as Cilium FQDN policies (Unmanaged)."""


class IngressSpec(Spec):
    from_namespaces: list[DnsLabel] = []
    """Namespaces whose pods may connect to the sandbox port; empty means the tenant's own."""


class NetworkSpec(Spec):
    management: Literal["Managed", "Unmanaged"] = "Managed"
    external_enforcer: str | None = None
    """What enforces egress when `management: Unmanaged`; required then. `cilium`: the stack
    renders the template's CiliumNetworkPolicy (FQDN allowlist, CIDRs, DNS, ingress)."""
    allow_dns: bool = True
    egress: EgressSpec = EgressSpec()
    ingress: IngressSpec = IngressSpec()

    @model_validator(mode="after")
    def _names_need_an_enforcer(self) -> NetworkSpec:
        if self.management == "Unmanaged" and not self.external_enforcer:
            raise ValueError(
                "management: Unmanaged turns off the sandbox NetworkPolicy; declare what enforces "
                "egress instead in externalEnforcer (for example 'cilium')"
            )
        if self.management == "Managed" and self.egress.domains and not self.egress.cidrs:
            raise ValueError(
                "egress.domains cannot be enforced by a NetworkPolicy (it matches addresses, not names): "
                "add the matching egress.cidrs, or use management: Unmanaged with an externalEnforcer"
            )
        if self.external_enforcer == CILIUM_ENFORCER and self.egress.domains and not self.allow_dns:
            raise ValueError(
                "egress.domains with externalEnforcer: cilium need allowDns: true: Cilium learns the "
                "addresses of allowed names from the DNS answers it sees"
            )
        return self
