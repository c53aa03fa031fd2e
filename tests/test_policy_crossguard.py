"""The CrossGuard pack, fed what the engine would send it.

The real program runs under Pulumi mocks; every resource registration's inputs are
taken in wire form (the protobuf Struct the engine receives) and decoded by the
policy SDK's own code, exactly as its Analyze/AnalyzeStack handlers do, into
ResourceValidationArgs and StackValidationArgs. The pack's verdicts must equal the
offline check's over the rendered stack.
"""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from sandbox_policy import RULES, Context, check
from sandbox_policy.crossguard import PACK_NAME, engine_context, manifest_from_resource, policies

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


def run_pack(spec: StackSpec, loader: UpstreamLoader) -> tuple[list[Reported], dict[str, dict[str, Any]]]:
    """Run the program under mocks and the pack over what it registered; return the
    violations and, per URN, the object the pack saw."""
    monitor = WireMonitor()
    # Reads of existing resources (bring-your-own checks) are not analyzed; registrations are.
    registrations = [r for r in run_under_mocks(lambda: deploy(spec, loader), monitor=monitor) if r.urn in monitor.wire]
    pack = policies(spec.policy_context())
    reported: list[Reported] = []
    # The SDK decodes request.properties exactly like this: MessageToDict -> deserialize -> proxy.
    props = {r.urn: unknown_checking_proxy(deserialize_properties(monitor.wire[r.urn])) for r in registrations}
    for policy in pack:
        def report(message: str, urn: str | None = None, policy: Any = policy, own: str = "") -> None:
            reported.append(Reported(policy.name, policy.enforcement_level, message, urn or own))
        if isinstance(policy, ResourceValidationPolicy):
            for r in registrations:
                args = ResourceValidationArgs(r.type, props[r.urn], r.urn, r.name, _opts(r), None, None, {})
                policy.validate(args, lambda m, u=None, r=r: report(m, u, own=r.urn))
        elif isinstance(policy, StackValidationPolicy):
            resources = [
                PolicyResource(r.type, {**deserialize_properties(monitor.wire[r.urn]), "status": {}}, r.urn, r.name,
                               _opts(r), None, None, [], {})
                for r in registrations
            ]
            policy.validate(StackValidationArgs(resources, None, {}), report)
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
    levels = {stack: {p.enforcement_level for p in policies(shipped(stack)[0].policy_context())}
              for stack in SHIPPED_STACKS}
    assert levels.pop("dev") == {EnforcementLevel.ADVISORY}
    assert levels and all(level == {EnforcementLevel.MANDATORY} for level in levels.values())  # staging, prod*
    assert [p.name for p in policies(Context())] == [r.name for r in RULES]


def _engine_config(stack: str) -> str:
    """PULUMI_CONFIG as the engine sets it for a policy pack: namespaced keys, JSON values."""
    import yaml

    from components.specs.loader import stack_file

    config = yaml.safe_load(stack_file(stack).read_text())["config"]
    return json.dumps({key: json.dumps(value) for key, value in config.items()})


def test_the_pack_reads_the_stack_settings_the_engine_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", _engine_config("dev"))
    monkeypatch.setenv("PULUMI_STACK", "dev")
    context = engine_context()
    assert (context.environment, context.policy) == ("dev", shipped("dev")[0].policy)

    monkeypatch.delenv("PULUMI_CONFIG")
    assert engine_context() == Context(source=engine_context().source)  # strict defaults


def test_the_pack_reads_a_stack_whose_kubeconfig_is_a_decrypted_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # `pulumi config set --secret --path cluster.provider.kubeconfig`: the pack gets the contents, decrypted.
    config = json.loads(_engine_config("dev"))
    cluster = json.loads(config["sandbox-infra:cluster"])
    cluster["provider"] = {"kubeconfig": "apiVersion: v1\nkind: Config\nusers: []\n"}
    config["sandbox-infra:cluster"] = json.dumps(cluster)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert engine_context().source == "stack dev"  # not the strict fallback for invalid config


def test_invalid_stack_config_falls_back_to_strict_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"sandbox-infra:cluster": json.dumps({"name": "x"})}))
    context = engine_context()
    assert (context.environment, context.policy.enforcement) == ("prod", "mandatory")
    assert "invalid" in capsys.readouterr().err


def test_policies_main_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policies/__main__.py as the engine would, with the gRPC server stubbed out."""
    built: dict[str, Any] = {}
    monkeypatch.setattr("pulumi_policy.PolicyPack", lambda **kwargs: built.update(kwargs))
    monkeypatch.setenv("PULUMI_CONFIG", _engine_config("prod"))
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME
    assert built["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [r.name for r in RULES]


def test_pack_project_files() -> None:
    import yaml

    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (PACK_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == (PACK_DIR.parent / ".venv").resolve()
    pins = {line.split("==")[0].lower(): line.split("==")[1]
            for line in (PACK_DIR / "requirements.txt").read_text().splitlines() if "==" in line}
    lock = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in (PACK_DIR.parent / "requirements.lock").read_text().splitlines() if "==" in line}
    assert pins and all(lock[name.replace("_", "-")] == version for name, version in pins.items())


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
