"""Turn one rendered manifest into one pulumi-kubernetes resource.

Built-in kinds are registered as pulumi-kubernetes' typed classes register them (so the
engine gets the right schema and await logic), without importing those classes: see
BuiltIn. Custom resources use `apiextensions.CustomResource`. The Pulumi name is
`namespace/name` (or `name`), never the API version, so that objects keep their URN
identity across agent-sandbox upgrades.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes import _utilities as k8s_sdk
from pydantic import BaseModel

from .errors import ConfigError
from .manifests.common import AGENT_SANDBOX_GROUPS, Manifest, tier
from .specs.agent_sandbox import API_VERSION_BY_RELEASE
from .specs.loader import validated

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class BuiltInKind:
    """What pulumi-kubernetes' typed class of a built-in kind adds to a registration."""

    fields: frozenset[str]
    """The top-level keys the typed class takes besides apiVersion and kind."""
    aliases: tuple[str, ...] = ()
    """The other API versions of the kind the typed class aliases (objects created at them
    before keep their identity)."""
    secrets: tuple[str, ...] = ()
    """Inputs the typed class wraps as secrets, and marks as secret outputs."""


_SPEC = frozenset({"metadata", "spec"})
_RBAC_OLD = ("rbac.authorization.k8s.io/v1alpha1", "rbac.authorization.k8s.io/v1beta1")
_ADMISSION_OLD = ("admissionregistration.k8s.io/v1alpha1", "admissionregistration.k8s.io/v1beta1")
# The built-in kinds the builders create, as pulumi-kubernetes 4.34.2's typed classes
# (`pulumi_kubernetes.<group>.<version>.<Kind>._internal_init`) register them; the type token
# is `kubernetes:<group>/<version>:<Kind>` (`core` for the empty group). tests/test_k8s_builtin.py
# proves every registration identical to the typed class's, kind by kind and for every stack.
BUILT_IN: dict[tuple[str, str], BuiltInKind] = {
    ("v1", "Namespace"): BuiltInKind(_SPEC),
    ("v1", "ServiceAccount"): BuiltInKind(frozenset({"automountServiceAccountToken", "imagePullSecrets", "metadata", "secrets"})),
    ("v1", "Service"): BuiltInKind(_SPEC),
    ("v1", "ConfigMap"): BuiltInKind(frozenset({"binaryData", "data", "immutable", "metadata"})),
    ("v1", "Secret"): BuiltInKind(frozenset({"data", "immutable", "metadata", "stringData", "type"}),
                                  secrets=("data", "stringData")),
    ("v1", "ResourceQuota"): BuiltInKind(_SPEC),
    ("v1", "LimitRange"): BuiltInKind(_SPEC),
    ("apps/v1", "Deployment"): BuiltInKind(_SPEC, ("apps/v1beta1", "apps/v1beta2", "extensions/v1beta1")),
    ("autoscaling/v2", "HorizontalPodAutoscaler"):
        BuiltInKind(_SPEC, ("autoscaling/v1", "autoscaling/v2beta1", "autoscaling/v2beta2")),
    ("networking.k8s.io/v1", "NetworkPolicy"): BuiltInKind(_SPEC, ("extensions/v1beta1",)),
    ("rbac.authorization.k8s.io/v1", "Role"): BuiltInKind(frozenset({"metadata", "rules"}), _RBAC_OLD),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): BuiltInKind(frozenset({"metadata", "roleRef", "subjects"}), _RBAC_OLD),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): BuiltInKind(frozenset({"aggregationRule", "metadata", "rules"}), _RBAC_OLD),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        BuiltInKind(frozenset({"metadata", "roleRef", "subjects"}), _RBAC_OLD),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): BuiltInKind(_SPEC, ("apiextensions.k8s.io/v1beta1",)),
    ("scheduling.k8s.io/v1", "PriorityClass"): BuiltInKind(
        frozenset({"description", "globalDefault", "metadata", "preemptionPolicy", "value"}),
        ("scheduling.k8s.io/v1alpha1", "scheduling.k8s.io/v1beta1")),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): BuiltInKind(_SPEC, _ADMISSION_OLD),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): BuiltInKind(_SPEC, _ADMISSION_OLD),
}


def type_token(api_version: str, kind: str) -> str:
    """pulumi-kubernetes' type token of a kind: `kubernetes:<apiVersion>:<Kind>`, with `core/`
    for the core group's `v1`."""
    return f"kubernetes:{api_version if '/' in api_version else 'core/' + api_version}:{kind}"


class BuiltIn(pulumi.CustomResource):
    """An object of a built-in kind, registered exactly as pulumi-kubernetes' typed class of
    the kind registers it: the same type token, name, inputs (apiVersion and kind set, secret
    inputs wrapped as secrets), the SDK's default options (the plugin version), the typed
    class's aliases and secret outputs, merged in the same order.

    Why not the typed classes: importing them (`core.v1`'s generated input and output types
    alone are 4.5 MB of Python) was half of the program's import time, on every preview and
    update; the engine and the provider get the same registration either way
    (docs/benchmarks.md, `make bench-engine`)."""

    def __init__(self, name: str, manifest: Manifest, opts: pulumi.ResourceOptions) -> None:
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        known = BUILT_IN[(api_version, kind)]
        props: dict[str, Any] = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "status")}
        unexpected = set(props) - known.fields
        if unexpected:
            raise ConfigError(f"{kind} {name}: {api_version} {kind} takes {sorted(known.fields)}, got {sorted(unexpected)}")
        for key in known.secrets:
            if props.get(key) is not None:
                props[key] = pulumi.Output.secret(props[key])
        opts = pulumi.ResourceOptions.merge(k8s_sdk.get_resource_opts_defaults(), opts)
        if known.secrets:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=list(known.secrets)))
        if known.aliases:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                aliases=[pulumi.Alias(type_=type_token(other, kind)) for other in known.aliases]))
        super().__init__(type_token(api_version, kind), name, {"apiVersion": api_version, "kind": kind, **props}, opts)


def resource_name(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def version_aliases(manifest: Manifest) -> list[pulumi.Alias]:
    """Aliases to the same kind at the other agent-sandbox API versions.

    The resource type token contains the API version, so a v1alpha1 -> v1beta1 bump
    would otherwise look like a new resource (create + delete = a live pool replaced).
    """
    group, _, version = manifest["apiVersion"].rpartition("/")
    if group not in AGENT_SANDBOX_GROUPS:
        return []
    others = sorted(set(API_VERSION_BY_RELEASE.values()) - {version})
    return [pulumi.Alias(type_=f"kubernetes:{group}/{other}:{manifest['kind']}") for other in others]


def kubernetes_resource(manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    name = resource_name(manifest)
    if (manifest["apiVersion"], manifest["kind"]) in BUILT_IN:
        return BuiltIn(name, manifest, opts)
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "status")}
    unexpected = set(body) - {"metadata", "spec"}
    if unexpected:
        raise ConfigError(f"{manifest['kind']} {name}: custom resources carry only metadata and spec, got {sorted(unexpected)}")
    aliases = version_aliases(manifest)
    if aliases:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))
    return k8s.apiextensions.CustomResource(
        name, api_version=manifest["apiVersion"], kind=manifest["kind"],
        metadata=body["metadata"], spec=body.get("spec"), opts=opts,
    )


# Resource options every object of a kind gets, wherever it is created.
def _kind_options(manifest: Manifest) -> pulumi.ResourceOptions:
    kind = manifest["kind"]
    if kind == "CustomResourceDefinition":
        # Deleting a CRD deletes every object of its kind (every sandbox, every VM).
        return pulumi.ResourceOptions(retain_on_delete=True)
    if kind == "Secret":
        # Secret values reach Pulumi only as secrets: encrypted in state, masked in logs and diffs.
        return pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
    return pulumi.ResourceOptions()


def place(
    component: pulumi.ComponentResource, manifests: list[Manifest], after: list[pulumi.Resource],
    options: dict[int, pulumi.ResourceOptions] | None = None,
) -> list[pulumi.CustomResource]:
    """Register a component's objects as its children, tier by tier (KIND_TIERS in
    manifests/common.py, the one place the order of kinds is written): each object waits for
    `after` (what the caller made the component depend on, and the components passed to it)
    and for every object of the component in an earlier tier. `options` adds resource options
    to single objects, by their index in `manifests`. Returns the resources in `manifests` order."""
    created: dict[int, pulumi.CustomResource] = {}
    earlier: list[pulumi.CustomResource] = []
    for level in sorted({tier(m["kind"]) for m in manifests}):
        this_tier = []
        for index, manifest in enumerate(manifests):
            if tier(manifest["kind"]) != level:
                continue
            opts = pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=component, depends_on=[*after, *earlier]), _kind_options(manifest))
            if options and index in options:
                opts = pulumi.ResourceOptions.merge(opts, options[index])
            created[index] = kubernetes_resource(manifest, opts)
            this_tier.append(created[index])
        earlier += this_tier
    return [created[index] for index in range(len(manifests))]


def dependencies(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """What the caller made a component depend on (`opts.depends_on`), for its children.

    A component's children are separate registrations: each is given the component's
    dependencies itself, so that none is created before what the caller said must exist
    first (the CRDs and controller, the tenant's namespace).
    """
    depends_on = opts.depends_on if opts is not None else None
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        return [depends_on]
    if isinstance(depends_on, list | tuple):
        return list(depends_on)
    raise ConfigError("opts.depends_on of a sandbox-infra component: give a resource or a list of resources, "
                      "not an Output (the component hands them on to each of its children)")


def metadata(resource: pulumi.CustomResource, field: str = "name") -> pulumi.Output[str]:
    """A metadata field (name, namespace) of the object as the cluster has it: an Output that
    resolves once the object exists, so whatever uses it waits for the object."""
    return resource.metadata.apply(  # type: ignore[attr-defined]
        lambda meta: meta[field] if isinstance(meta, dict) else getattr(meta, field))


COMPONENT_SECRET_HINT = ("must be a Pulumi secret, never plain text: pass a `SecretValue` from stack config or a "
                         "`pulumi.Output` (`config.require_secret(...)`, another resource's output)")


def as_spec(model: type[M], value: M | dict[str, Any], where: str, **defaults: Any) -> M:
    """An args class's `spec`: the model as given, or a plain dict with the camelCase keys of
    docs/config.md validated into it (one ConfigError naming each bad key path and value, as
    for the stack config). `defaults` fill keys the dict leaves out (e.g. a template's tenant,
    taken from the Tenant passed alongside)."""
    if isinstance(value, model):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: give a {model.__name__} or a mapping of its keys, not {type(value).__name__}")
    return validated(model, {**defaults, **value}, where, prefix="spec.", secret_hint=COMPONENT_SECRET_HINT)


def one_of(value: str, expected: str, where: str, key: str) -> None:
    """A spec key that names a component passed alongside must name that one."""
    if value != expected:
        raise ConfigError(f"{where}: spec.{key} = {value!r} does not match the {key} passed ({expected!r}); "
                          f"leave spec.{key} out or make them equal")


class ResolvedInputError(ConfigError, pulumi.RunError):
    """Bad input found in an Output once it resolved. Raised inside an apply, where only a
    `pulumi.RunError` reaches the user as its message alone (the language host prints any other
    exception with a Python stack); a ConfigError, so that one `except` serves both."""


def checked_input(value: Any, check: Callable[[Any], T]) -> T | pulumi.Output[T]:
    """An args field that may be a `pulumi.Input`, checked by `check` (which raises a
    ConfigError): a plain value at once, as a spec key is; an Output once it resolves, failing
    the deployment with the same message (unknown in a preview, it is checked by `up`)."""
    if not isinstance(value, pulumi.Output):
        return check(value)

    def resolved(known: Any) -> T:
        try:
            return check(known)
        except ConfigError as error:
            raise ResolvedInputError(str(error)) from None

    return value.apply(resolved)
