"""The same rules as a Pulumi CrossGuard policy pack (`policies/__main__.py` builds it).

The engine sends each resource's inputs (`Analyze`) and, at the end, every resource
of the stack (`AnalyzeStack`). A pulumi-kubernetes resource's inputs are the
manifest itself (apiVersion, kind, metadata, spec, ...), so each object rule becomes
a ResourceValidationPolicy and each stack rule a StackValidationPolicy that run the
very functions `check` runs, under the same per-stack settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import RULES
from .errors import InputError
from .exceptions import exception_for
from .rule import Context, Manifest, Rule

PACK_NAME = "sandbox-infra-security"
# pulumi-kubernetes resources that are not Kubernetes objects but groups of them.
_NOT_OBJECTS = ("yaml", "yaml/v2", "helm.sh/v3", "helm.sh/v4", "kustomize", "kustomize/v2")


def plain(value: Any) -> Any:
    """A deep copy of policy-SDK property proxies as plain dicts and lists (reading an
    unknown preview value raises the SDK's UnknownValueError, which it reports).
    Protobuf carries every number as a double: whole numbers become ints again, as in
    the rendered manifest (`replicas: 2`, not `2.0`)."""
    if isinstance(value, Mapping):
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def object_kind(resource_type: str) -> tuple[str, str] | None:
    """(apiVersion, kind) of a pulumi-kubernetes resource type token, None for anything else."""
    package, _, rest = resource_type.partition(":")
    module, _, kind = rest.partition(":")
    if package != "kubernetes" or "/" not in module or module in _NOT_OBJECTS or not kind:
        return None
    return module.removeprefix("core/"), kind


def manifest_from_resource(resource_type: str, props: Mapping[str, Any]) -> Manifest | None:
    """The Kubernetes object behind a pulumi-kubernetes resource, or None for anything else."""
    token = object_kind(resource_type)
    if token is None:
        return None
    manifest = plain(props)
    manifest.setdefault("apiVersion", token[0])
    manifest.setdefault("kind", token[1])
    return manifest


def _level(rule: Rule, context: Context) -> EnforcementLevel:
    return EnforcementLevel(context.enforcement_of(rule))


def resource_policy(rule: Rule, context: Context) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        token = object_kind(args.resource_type)
        if token is None or (rule.kinds is not None and token[1] not in rule.kinds):
            return  # not an object this rule looks at: skip copying its properties
        manifest = manifest_from_resource(args.resource_type, args.props)
        if manifest is None:
            return
        for violation in rule.violations(manifest, context):
            if exception_for(rule.name, manifest, violation) is None:
                report_violation(violation.message, None)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=_level(rule, context), severity=Severity(rule.severity),
        remediation_steps=rule.remediation, tags=[rule.family],
    )


def stack_policy(rule: Rule, context: Context) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        urns, manifests = [], []
        for resource in args.resources:
            manifest = manifest_from_resource(resource.resource_type, resource.props)
            if manifest is not None:
                urns.append(resource.urn)
                manifests.append(manifest)
        for index, violation in rule.stack_violations(manifests, context):
            if exception_for(rule.name, manifests[index], violation) is None:
                report_violation(violation.message, urns[index])

    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=_level(rule, context), severity=Severity(rule.severity),
        remediation_steps=rule.remediation, tags=[rule.family],
    )


def policies(context: Context, rules: Sequence[Rule] = RULES) -> list[Policy]:
    return [resource_policy(r, context) if r.scope == "object" else stack_policy(r, context) for r in rules]


def engine_context() -> Context:
    """The stack's policy settings from the config the engine hands the pack (PULUMI_CONFIG),
    with the project and environment layers underneath, as the program layers them; strict
    defaults without it. Only `cluster.environment` and `policy` are read: the engine gives a
    pack the decrypted config but not which keys are secret, and judging secrets (or any other
    config error) is the program's job, which stops on it itself."""
    from components.specs.cluster import ClusterSpec
    from components.specs.loader import pulumi_engine_config, validated, with_layers
    from components.specs.secrets import REVEALED_CONTEXT

    from .settings import PolicySpec

    stack = os.environ.get("PULUMI_STACK", "?")
    config = pulumi_engine_config()
    if "cluster" not in config:
        return Context(source="strict defaults (no sandbox-infra stack config from the engine)")
    source = f"stacks/Pulumi.{stack}.yaml"
    try:
        layered = with_layers(config, source).config
        # Decrypted like the program's config: a kubeconfig given as a secret arrives as its contents.
        cluster = validated(ClusterSpec, layered.get("cluster"), source, prefix="sandbox-infra:cluster.",
                            context={REVEALED_CONTEXT: True})
        policy = validated(PolicySpec, layered.get("policy", {}), source, prefix="sandbox-infra:policy.")
    except InputError:
        # Values may be decrypted secrets: say that the config is invalid, never what it holds.
        print(f"{PACK_NAME}: the config of stack {stack} is invalid; judging with strict defaults", file=sys.stderr)
        return Context(source=f"strict defaults (stack {stack} config is invalid)")
    return Context(cluster.environment, policy, f"stack {stack}")


def policy_pack_args(context: Context) -> dict[str, Any]:
    """Keyword arguments for `pulumi_policy.PolicyPack`."""
    return {
        "name": PACK_NAME,
        "policies": policies(context),
        "enforcement_level": EnforcementLevel(context.policy.enforcement),
        "description": f"Security rules for AI-agent sandbox stacks (settings: {context.source})",
    }
