"""The CrossGuard pack, fed what the engine would send it.

The real program runs under Pulumi mocks; every resource registration's inputs are
taken in wire form (the protobuf Struct the engine receives) and decoded by the
policy SDK's own code, exactly as its Analyze/AnalyzeStack handlers do, into
ResourceValidationArgs and StackValidationArgs. The pack's verdicts must equal the
offline check's over the rendered stack.
"""

from __future__ import annotations

import re
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy
from sandbox_policy import RULES, RULES_BY_NAME, check
from sandbox_policy.crossguard import (
    PACK_NAME,
    STRICT_CONTEXT,
    config_schema,
    context_from_config,
    manifest_from_resource,
    pack_config,
    policies,
)

from components.manifests import sandbox_template
from components.manifests.stack import render_stack
from components.specs.stack import StackSpec
from components.stack import deploy
from components.upstream import UpstreamLoader

from .policy_support import SHIPPED_STACKS, shipped
from .pulumi_harness import RecordingMonitor, Registration, run_under_mocks

PACK_DIR = Path(__file__).parents[1] / "policies"


class WireMonitor(RecordingMonitor):
    """Also keeps each registration's inputs as the protobuf Struct sent to the engine."""

    def __init__(self) -> None:
        super().__init__()
        self.wire: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.wire[response.urn] = json_format.MessageToDict(request.object)
        return response


@dataclass(frozen=True)
class Reported:
    policy: str
    enforcement: EnforcementLevel
    message: str
    urn: str


def _opts(registration: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], registration.parent or None)


def resolved(config: dict[str, Any], policy: Any) -> tuple[EnforcementLevel, dict[str, Any]]:
    """What the engine hands a policy from a policy config file: its level ("all" first, then
    the policy's own entry, else the policy's default) and its properties over the schema's
    defaults."""
    entry = config.get(policy.name, {})
    level = entry.get("enforcementLevel") or config.get("all") or policy.enforcement_level.value
    schema = policy.config_schema.properties if policy.config_schema else {}
    props = {**{k: v["default"] for k, v in schema.items()}, **{k: v for k, v in entry.items() if k != "enforcementLevel"}}
    return EnforcementLevel(level), props


def run_pack(spec: StackSpec, loader: UpstreamLoader) -> tuple[list[Reported], dict[str, dict[str, Any]]]:
    """Run the program under mocks and the pack over what it registered; return the
    violations and, per URN, the object the pack saw."""
    monitor = WireMonitor()
    # Reads of existing resources (bring-your-own checks) are not analyzed; registrations are.
    registrations = [r for r in run_under_mocks(lambda: deploy(spec, loader), monitor=monitor) if r.urn in monitor.wire]
    config = pack_config(spec.policy_context())
    reported: list[Reported] = []
    # The SDK decodes request.properties exactly like this: MessageToDict -> deserialize -> proxy.
    props = {r.urn: unknown_checking_proxy(deserialize_properties(monitor.wire[r.urn])) for r in registrations}
    for policy in policies():
        level, settings = resolved(config, policy)

        def report(message: str, urn: str | None = None, policy: Any = policy, level: Any = level, own: str = "") -> None:
            reported.append(Reported(policy.name, level, message, urn or own))
        if isinstance(policy, ResourceValidationPolicy):
            for r in registrations:
                args = ResourceValidationArgs(r.type, props[r.urn], r.urn, r.name, _opts(r), None, settings, {})
                policy.validate(args, lambda m, u=None, r=r: report(m, u, own=r.urn))
        elif isinstance(policy, StackValidationPolicy):
            resources = [
                PolicyResource(r.type, {**deserialize_properties(monitor.wire[r.urn]), "status": {}}, r.urn, r.name,
                               _opts(r), None, None, [], {})
                for r in registrations
            ]
            policy.validate(StackValidationArgs(resources, settings, {}), report)
    seen = {r.urn: m for r in registrations if (m := manifest_from_resource(r.type, props[r.urn])) is not None}
    return reported, seen


def _ref(manifest: dict[str, Any]) -> str:
    meta = manifest["metadata"]
    return f"{manifest['kind']} {meta['namespace'] + '/' if meta.get('namespace') else ''}{meta['name']}"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_pack_passes_the_shipped_stacks(stack: str, loader: UpstreamLoader) -> None:
    spec, _ = shipped(stack)
    reported, seen = run_pack(spec, loader)
    assert reported == []
    # It did look: every Kubernetes object the stack renders reached the pack.
    assert len(seen) == len(shipped(stack)[1])


def test_the_pack_and_the_offline_check_agree_on_an_insecure_stack(
    loader: UpstreamLoader, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A builder regression (privileged, host network, token mounted) seen by both uses."""
    original = sandbox_template.pod_spec

    def insecure_pod_spec(template: Any) -> dict[str, Any]:
        spec = original(template)
        spec["hostNetwork"] = True
        spec["automountServiceAccountToken"] = True
        spec["containers"][0]["securityContext"]["privileged"] = True
        return spec

    monkeypatch.setattr(sandbox_template, "pod_spec", insecure_pod_spec)
    spec, _ = shipped("prod")
    reported, seen = run_pack(spec, loader)
    offline = check(render_stack(spec, loader), spec.policy_context())

    pack_view = {(r.policy, _ref(seen[r.urn]), r.message) for r in reported}
    offline_view = {(f.rule.name, f.object_ref, f.message) for f in offline.findings if not f.exception}
    assert pack_view == offline_view
    assert {"pss-privileged", "pss-host-namespaces", "sandbox-no-service-account-token"} <= {r.policy for r in reported}
    assert {r.enforcement for r in reported} == {EnforcementLevel.MANDATORY}


def test_stack_rules_report_the_offending_resource(loader: UpstreamLoader, monkeypatch: pytest.MonkeyPatch) -> None:
    from components import tenant  # the component imports the builder by name

    monkeypatch.setattr(tenant, "build_tenant", lambda spec, original=tenant.build_tenant: [
        m for m in original(spec) if m["kind"] != "LimitRange"
    ])
    spec, _ = shipped("dev")
    reported, seen = run_pack(spec, loader)
    assert [(r.policy, r.enforcement) for r in reported] == [("tenant-namespace-guardrails", EnforcementLevel.ADVISORY)]
    assert "LimitRange" in reported[0].message
    assert _ref(seen[reported[0].urn]) == "SandboxTemplate agents-dev/python"


def test_enforcement_follows_the_stack() -> None:
    """The stack's `policy.enforcement` is the one place enforcement is set: the generated
    policy config carries it to the engine."""
    levels = {stack: {resolved(pack_config(shipped(stack)[0].policy_context()), p)[0] for p in policies()}
              for stack in SHIPPED_STACKS}
    assert levels.pop("dev") == {EnforcementLevel.ADVISORY}
    assert levels and all(level == {EnforcementLevel.MANDATORY} for level in levels.values())  # staging, prod*
    assert [p.name for p in policies()] == [r.name for r in RULES]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_generated_config_fits_each_schema_and_carries_the_stack_settings(stack: str) -> None:
    context = shipped(stack)[0].policy_context()
    config = pack_config(context)
    for rule in RULES:
        schema = config_schema(rule)
        if schema is None:
            assert rule.name not in config
            continue
        jsonschema.validate(config[rule.name], {"type": "object", "properties": schema.properties,
                                                "additionalProperties": False})
        judged = context_from_config(rule, config[rule.name])
        assert judged.environment == context.environment or "environment" not in rule.settings
        for setting in rule.settings:
            if setting != "environment":
                assert getattr(judged.policy, setting) == getattr(context.policy, setting), (rule.name, setting)


def test_without_config_every_policy_judges_by_the_strict_settings() -> None:
    for rule in RULES:
        judged = context_from_config(rule, {})
        assert (judged.environment, judged.policy) == (STRICT_CONTEXT.environment, STRICT_CONTEXT.policy)
        schema = config_schema(rule)
        if schema is not None:  # the schema's defaults are the strict settings too
            defaults = {k: v["default"] for k, v in schema.properties.items()}
            assert context_from_config(rule, defaults).policy == STRICT_CONTEXT.policy, rule.name


@pytest.mark.parametrize("config", [
    {"maxWarmPoolReplicas": "many"},
    {"environment": "production"},
    {"allowedRegistries": "ghcr.io"},
    {"unknownSetting": True},
])
def test_invalid_policy_config_fails_closed(config: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rule = RULES_BY_NAME["sandbox-warm-pool-cap"]
    assert context_from_config(rule, config) == STRICT_CONTEXT
    assert "invalid policy config" in capsys.readouterr().err


def test_a_setting_from_policy_config_changes_the_verdict() -> None:
    """The pack reads its policy config, not the program's stack config: a pool of 30 is
    within a cap of 50 set there, and over the strict default of 20."""
    rule = RULES_BY_NAME["sandbox-warm-pool-cap"]
    pool = {"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
            "metadata": {"name": "p", "namespace": "t"}, "spec": {"replicas": 30}}
    assert rule.violations(pool, context_from_config(rule, {}))
    assert not rule.violations(pool, context_from_config(rule, {"maxWarmPoolReplicas": 50}))


def test_each_rule_declares_the_settings_it_reads() -> None:
    """A rule that reads `context.policy.X` or `context.environment` without declaring it
    would get no config property, and judge every stack by the strict default."""
    import inspect

    for rule in RULES:
        source = inspect.getsource(rule.check)
        read = set(re.findall(r"context\.policy\.(\w+)", source))
        read |= {"environment"} if "context.environment" in source else set()
        assert read == set(rule.settings), rule.name


def test_policies_main_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policies/__main__.py as the engine would, with the gRPC server stubbed out."""
    built: dict[str, Any] = {}
    monkeypatch.setattr("pulumi_policy.PolicyPack", lambda **kwargs: built.update(kwargs))
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME
    assert built["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [r.name for r in RULES]


def test_the_pack_stands_alone() -> None:
    """Its folder holds all it runs: its own virtualenv setting and requirements, pinned as the
    project's lock pins them, and code that imports nothing of the program or its tools."""
    import ast

    import yaml

    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    pins = {line.split("==")[0].lower(): line.split("==")[1]
            for line in (PACK_DIR / "requirements.txt").read_text().splitlines() if "==" in line}
    lock = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in (PACK_DIR.parent / "requirements.lock").read_text().splitlines() if "==" in line}
    assert pins and all(lock[name.replace("_", "-")] == version for name, version in pins.items())
    imported = set()
    for path in [PACK_DIR / "__main__.py", *(PACK_DIR / "sandbox_policy").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
    third_party = imported - set(sys.stdlib_module_names) - {"sandbox_policy"}
    assert third_party <= {"pulumi_policy", "pydantic"}, third_party
    assert {"pulumi-policy", "pydantic"} <= set(pins)


@pytest.mark.parametrize(("token", "expected"), [
    ("kubernetes:core/v1:Namespace", ("v1", "Namespace")),
    ("kubernetes:apps/v1:Deployment", ("apps/v1", "Deployment")),
    ("kubernetes:extensions.agents.x-k8s.io/v1beta1:SandboxTemplate", ("extensions.agents.x-k8s.io/v1beta1", "SandboxTemplate")),
    ("kubernetes:yaml/v2:ConfigGroup", None),
    ("kubernetes:helm.sh/v4:Chart", None),
    ("pulumi:providers:kubernetes", None),
    ("sandbox-infra:index:WarmPool", None),
])
def test_manifest_from_resource(token: str, expected: tuple[str, str] | None) -> None:
    manifest = manifest_from_resource(token, {"metadata": {"name": "x"}})
    assert (manifest and (manifest["apiVersion"], manifest["kind"])) == expected


@pytest.mark.parametrize("which", ["good", "bad"])
def test_the_pack_judges_claims_and_sandboxes_as_the_offline_rule_does(which: str) -> None:
    """The official client's claim passes and claims/sandboxes with reserved keys fail, in the
    pack exactly as offline (admission: tests/e2e/test_admission.py judges the same examples)."""
    from google.protobuf import struct_pb2

    from .policy_support import EXAMPLES, documents

    policy = next(p for p in policies() if p.name == "sandbox-reserved-metadata")
    rule = RULES_BY_NAME["sandbox-reserved-metadata"]
    judged = 0
    for doc in documents(EXAMPLES / "sandbox-reserved-metadata" / f"{which}.yaml"):
        if doc["kind"] not in ("SandboxClaim", "Sandbox"):
            continue
        group_version = doc["apiVersion"]
        wire = json_format.MessageToDict(json_format.ParseDict(doc, struct_pb2.Struct()))
        props = unknown_checking_proxy(deserialize_properties(wire))
        messages: list[str] = []
        urn = f"urn:pulumi:test::p::kubernetes:{group_version}:{doc['kind']}::{doc['metadata']['name']}"
        args = ResourceValidationArgs(f"kubernetes:{group_version}:{doc['kind']}", props, urn, doc["metadata"]["name"],
                                      PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None),
                                      None, {}, {})
        policy.validate(args, lambda message, _urn=None, found=messages: found.append(message))
        offline = rule.violations(doc, STRICT_CONTEXT)
        assert bool(messages) == (which == "bad") == bool(offline), doc["metadata"]["name"]
        assert all(any(v.message in m for m in messages) for v in offline), (doc["metadata"]["name"], messages)
        judged += 1
    assert judged >= 2
