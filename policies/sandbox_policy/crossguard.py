"""The same rules as a Pulumi CrossGuard policy pack (`policies/__main__.py` builds it).

The engine sends each resource's inputs (`Analyze`) and, at the end, every resource
of the stack (`AnalyzeStack`). A pulumi-kubernetes resource's inputs are the
manifest itself (apiVersion, kind, metadata, spec, ...), so each object rule becomes
a ResourceValidationPolicy and each stack rule a StackValidationPolicy that run the
very functions `check` runs, under the same per-stack settings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pydantic import ValidationError

from . import RULES
from .exceptions import exception_for
from .rule import STRICT_POLICY, Context, Rule
from .settings import PolicySpec
from .vocabulary import Environment, Manifest

STRICT_CONTEXT = Context()

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


ENVIRONMENT_SCHEMA = {
    "type": "string", "enum": list(get_args(Environment)), "default": STRICT_CONTEXT.environment,
    "description": "The stack's environment (dev, staging, prod); some rules are stricter in prod.",
}


def _key(setting: str) -> str:
    """A setting's config key: `environment`, or the camelCase key of the stack's `policy:` config."""
    return setting if setting == "environment" else PolicySpec.model_fields[setting].alias or setting


def config_schema(rule: Rule) -> PolicyConfigSchema | None:
    """One property per setting the rule reads, typed and bounded as in the stack's `policy:`
    config, defaulting to the strict settings (what a pack without config judges by)."""
    if not rule.settings:
        return None
    fields = PolicySpec.model_json_schema(by_alias=True)["properties"]
    strict = STRICT_POLICY.model_dump(by_alias=True, mode="json")
    properties = {
        _key(s): ENVIRONMENT_SCHEMA if s == "environment"
        else {**{k: v for k, v in fields[_key(s)].items() if k != "title"}, "default": strict[_key(s)]}
        for s in rule.settings
    }
    return PolicyConfigSchema(properties=properties)


def context_from_config(rule: Rule, config: Mapping[str, Any]) -> Context:
    """The settings a policy judges by: its policy config over the strict defaults. A value
    the settings model refuses fails closed: strict defaults, and a line on stderr."""
    values = {k: v for k, v in plain(config).items() if k != "enforcementLevel"}
    environment = values.pop("environment", STRICT_CONTEXT.environment)
    try:
        settings = PolicySpec.model_validate({**STRICT_POLICY.model_dump(by_alias=True), **values})
    except ValidationError:
        settings = None
    if settings is None or environment not in get_args(Environment):
        print(f"{PACK_NAME}: policy {rule.name}: invalid policy config; judging with strict defaults", file=sys.stderr)
        return STRICT_CONTEXT
    return Context(environment, settings, "policy config")


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        token = object_kind(args.resource_type)
        if token is None or (rule.kinds is not None and token[1] not in rule.kinds):
            return  # not an object this rule looks at: skip copying its properties
        manifest = manifest_from_resource(args.resource_type, args.props)
        if manifest is None:
            return
        for violation in rule.violations(manifest, context_from_config(rule, args.get_config())):
            if exception_for(rule.name, manifest, violation) is None:
                report_violation(violation.message, None)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement), severity=Severity(rule.severity),
        remediation_steps=rule.remediation, tags=[rule.family], config_schema=config_schema(rule),
    )


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        urns, manifests = [], []
        for resource in args.resources:
            manifest = manifest_from_resource(resource.resource_type, resource.props)
            if manifest is not None:
                urns.append(resource.urn)
                manifests.append(manifest)
        for index, violation in rule.stack_violations(manifests, context_from_config(rule, args.get_config())):
            if exception_for(rule.name, manifests[index], violation) is None:
                report_violation(violation.message, urns[index])

    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel(rule.enforcement), severity=Severity(rule.severity),
        remediation_steps=rule.remediation, tags=[rule.family], config_schema=config_schema(rule),
    )


def policies(rules: Sequence[Rule] = RULES) -> list[Policy]:
    return [resource_policy(r) if r.scope == "object" else stack_policy(r) for r in rules]


def pack_config(context: Context, rules: Sequence[Rule] = RULES) -> dict[str, Any]:
    """The policy config (`--policy-pack-config`) that makes the pack judge as `check` does
    under `context`: an advisory stack turns every policy advisory ("all"); each rule that
    reads a setting gets it. The stack's `policy:` config is the one place these are set;
    this file is generated from it (`sandbox-infra policy-config -s STACK`)."""
    values = {**context.policy.model_dump(by_alias=True, mode="json"), "environment": context.environment}
    config: dict[str, Any] = {"all": "advisory"} if context.policy.enforcement == "advisory" else {}
    config.update({rule.name: {_key(s): values[_key(s)] for s in rule.settings} for rule in rules if rule.settings})
    return config


def policy_pack_args() -> dict[str, Any]:
    """Keyword arguments for `pulumi_policy.PolicyPack`. Without policy config every policy
    judges by the strict settings (environment prod) at its own level: a pack that is not
    told otherwise fails closed."""
    return {
        "name": PACK_NAME,
        "policies": policies(),
        "enforcement_level": EnforcementLevel.MANDATORY,
        "description": "Security rules for AI-agent sandbox stacks (settings: policy config, strict defaults)",
    }
