"""Shared building blocks for the stack config models.

Every model forbids unknown keys and uses the camelCase key names that appear in
`stacks/Pulumi.<stack>.yaml`, so a typo fails loudly instead of being ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from sandbox_policy.vocabulary import RESERVED_KEY_DOMAINS, parse_image, reserved_domain


class Spec(BaseModel):
    """Base for every config model: strict keys, camelCase aliases, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
        # YAML has real booleans and numbers: `replicas: true` or `enabled: 1` is a mistake,
        # never something to coerce (pydantic's lax mode would read true as 1).
        strict=True,
    )


# --- names --------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]


# --- quantities ---------------------------------------------------------------

_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def quantity_value(quantity: str) -> Decimal:
    """The numeric value of a Kubernetes quantity such as `500m` or `2Gi`."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    return Decimal(match["num"]) * _SUFFIX[match["suffix"]]


def _quantity(value: str | int | float) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError("must be a Kubernetes quantity such as 250m, 1, 512Mi or 2Gi")
    if quantity_value(text) <= 0:
        raise ValueError("must be greater than zero")
    return text


Quantity = Annotated[str | int | float, AfterValidator(_quantity)]


# --- images -------------------------------------------------------------------

def _image(value: str) -> str:
    parts = parse_image(value)
    if parts is None:
        raise ValueError("must be an image reference like registry.example.com/team/app:1.2.3[@sha256:...]")
    _, tag, digest = parts
    if digest is None and tag is None:
        raise ValueError("must be pinned: add a version tag or an @sha256 digest")
    if digest is None and tag == "latest":
        raise ValueError("must not use the mutable ':latest' tag; pin a version tag or an @sha256 digest")
    return value


Image = Annotated[str, AfterValidator(_image)]


# --- label and annotation keys ---------------------------------------------------

# Kubernetes' own rules (apimachinery validation.IsQualifiedName / IsValidLabelValue):
# label, annotation and node-selector keys are `[prefix/]name`, the prefix a DNS
# subdomain, the name at most 63 alphanumerics with '-', '_' or '.' inside.
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def qualified_name_problem(key: str) -> str | None:
    """Why Kubernetes would reject `key` as a label/annotation/selector key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"key {key!r}: the prefix before '/' must be a DNS subdomain (lower-case, digits, '-', '.')"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (f"key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit (optionally after a DNS-subdomain prefix and '/')")
    return None


def label_value_problem(key: str, value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (f"value of {key!r} must be at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit (or empty)")
    return None


def _metadata_keys(values: dict[str, str]) -> dict[str, str]:
    for key in values:
        problem = qualified_name_problem(key)
        if problem is not None:
            raise ValueError(problem)
        domain = reserved_domain(key)
        if domain is not None:
            raise ValueError(
                f"key {key!r} uses the reserved prefix {domain!r}; reserved prefixes are "
                + ", ".join(f"'{d}/'" for d in RESERVED_KEY_DOMAINS)
            )
    return values


def _label_values(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        problem = label_value_problem(key, value)
        if problem is not None:
            raise ValueError(problem)
    return values


def _selector(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        problem = qualified_name_problem(key) or label_value_problem(key, value)
        if problem is not None:
            raise ValueError(problem)
    return values


UserMetadata = Annotated[dict[str, str], AfterValidator(_metadata_keys)]
"""Annotations: Kubernetes key rules, no reserved prefixes; any string value."""
UserLabels = Annotated[dict[str, str], AfterValidator(_metadata_keys), AfterValidator(_label_values)]
"""Labels: annotation rules plus Kubernetes label values."""
NodeSelector = Annotated[dict[str, str], AfterValidator(_selector)]
"""Node labels to select (reserved prefixes allowed: kubernetes.io/arch is the usual key)."""


# --- namespaces --------------------------------------------------------------------

# Namespaces of Kubernetes itself and of what this project installs: a tenant (or the
# catalogue) there would be a second Namespace object of the same name, or worse, take
# over a system namespace's quota, policies and Pod Security level.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "agent-sandbox-system", "kubevirt")


def _namespace(value: str) -> str:
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise ValueError(
            f"{value!r} is a system namespace or one this project installs into; reserved: "
            + ", ".join(RESERVED_NAMESPACES) + " and every kube-* name"
        )
    return value


Namespace = Annotated[str, AfterValidator(_dns_label), AfterValidator(_namespace)]


class Resources(Spec):
    """CPU/memory requests and limits: both required, requests never above limits."""

    requests: dict[str, Quantity]
    limits: dict[str, Quantity]

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for kind, values in (("requests", self.requests), ("limits", self.limits)):
            missing = [r for r in ("cpu", "memory") if r not in values]
            if missing:
                raise ValueError(f"{kind} must set {' and '.join(missing)}")
        for name, request in self.requests.items():
            limit = self.limits.get(name)
            if limit is not None and quantity_value(str(request)) > quantity_value(str(limit)):
                raise ValueError(f"requests.{name} ({request}) is greater than limits.{name} ({limit})")
        return self

    def as_manifest(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {k: str(v) for k, v in sorted(self.requests.items())},
            "limits": {k: str(v) for k, v in sorted(self.limits.items())},
        }


Replicas = Annotated[int, Field(ge=0, le=1000)]
