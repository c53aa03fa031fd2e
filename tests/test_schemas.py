"""Every object every shipped stack renders is valid against the upstream schemas, for
both supported agent-sandbox releases: the validation `check` runs before its rules
(components/validation.py), on every render."""

from __future__ import annotations

import copy

import pytest

from components.manifests.stack import render_stack
from components.specs import spec_from_config
from components.upstream import UpstreamLoader

from .conftest import SHIPPED_STACKS, stack_config
from .schemas import validation_errors

RELEASES = ["v0.4.6", "v0.5.6"]


def _render(stack: str, release: str, loader: UpstreamLoader) -> list[dict]:
    config = stack_config(stack)
    config["agentSandbox"] = {**config.get("agentSandbox", {}), "version": release}
    return render_stack(spec_from_config(config), loader)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_rendered_objects_match_upstream_schemas(stack: str, release: str, loader: UpstreamLoader) -> None:
    manifests = _render(stack, release, loader)
    problems = {
        f"{m['kind']} {m['metadata'].get('namespace', '')}/{m['metadata']['name']}": errors
        for m in manifests
        if (errors := validation_errors(m, release))
    }
    assert problems == {}
    custom = [m for m in manifests if m["kind"].startswith("Sandbox")]
    assert custom, "the stack renders no custom resources to validate"
    if stack.startswith("prod"):
        assert any(m["kind"] == "CiliumNetworkPolicy" for m in manifests), "prod's Cilium policies went unchecked"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: m["spec"]["updateStrategy"].update(type="Rolling"), 'spec.updateStrategy.type: "Rolling" is not one of'),
        (lambda m: m["spec"].update(replica=2), "spec.replica: unknown field"),
        (lambda m: m["spec"].pop("sandboxTemplateRef"), "spec: 'sandboxTemplateRef' is required"),
    ],
)
def test_schema_validation_catches_bad_custom_resources(loader: UpstreamLoader, mutate, expected: str) -> None:
    pool = next(m for m in _render("dev", "v0.5.6", loader) if m["kind"] == "SandboxWarmPool")
    broken = copy.deepcopy(pool)
    mutate(broken)
    assert any(expected in e for e in validation_errors(broken, "v0.5.6"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s["egress"][1]["toFQDNs"].append({"matchName": "a.example", "matchPattern": "*.example"}),
         "a mapping is not valid under exactly one of the allowed forms"),
        (lambda s: s["egress"][1]["toFQDNs"].append({"name": "a.example"}), "].name: unknown field"),
        (lambda s: s["egress"][0]["toPorts"][0]["ports"][0].update(protocol="ICMP"), '"ICMP" is not one of'),
        (lambda s: s.update(endpointSelectors=s.pop("endpointSelector")), "spec.endpointSelectors: unknown field"),
    ],
)
def test_schema_validation_catches_bad_cilium_policies(loader: UpstreamLoader, mutate, expected: str) -> None:
    policy = next(m for m in _render("prod", "v0.5.6", loader)
                  if m["kind"] == "CiliumNetworkPolicy" and m["metadata"]["name"] == "python-network-policy")
    assert validation_errors(policy, "v0.5.6") == []
    broken = copy.deepcopy(policy)
    mutate(broken["spec"])
    assert any(expected in e for e in validation_errors(broken, "v0.5.6")), validation_errors(broken, "v0.5.6")


def test_schema_validation_catches_bad_builtin_objects(loader: UpstreamLoader) -> None:
    deployment = next(m for m in _render("dev", "v0.5.6", loader) if m["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    assert validation_errors(broken, "v0.5.6")


def test_v1beta1_objects_are_not_served_by_v0_4_6(loader: UpstreamLoader) -> None:
    template = next(m for m in _render("dev", "v0.5.6", loader) if m["kind"] == "SandboxTemplate")
    assert validation_errors(template, "v0.4.6") == [
        "(object): no schema for kind 'SandboxTemplate' of apiVersion 'extensions.agents.x-k8s.io/v1beta1': not a "
        "Kubernetes v1.36 kind nor a custom resource of a pinned CRD (--ignore-missing-schemas skips such objects)"
    ]


def test_kubevirt_s_rebuilt_crds_come_only_from_a_mirror(tmp_path) -> None:
    """Upstream publishes no file of virt-operator's CRDs (they are built in Go): without a
    mirror the error says so, instead of trying a download."""
    from components.upstream import UpstreamError
    from components.validation import KUBEVIRT_OPERATOR_CRDS

    loader = UpstreamLoader(mirror=tmp_path / "empty", cache=tmp_path / "cache")
    with pytest.raises(UpstreamError, match=r"upstream publishes no such file .* set UPSTREAM_DIR to a mirror"):
        loader.read_bytes(KUBEVIRT_OPERATOR_CRDS)
