"""The shipped stacks and the upstream manifests against the whole rule set, and the
upstream exceptions: each one still needed, and no wider than it says."""

from __future__ import annotations

import copy

import pytest
from sandbox_policy import Context, check
from sandbox_policy.exceptions import UPSTREAM_EXCEPTIONS

from .policy_support import SHIPPED_STACKS, shipped, upstream_documents

KUBEVIRT_OPERATOR = "kubevirt/v1.9.0/kubevirt-operator.yaml"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_have_no_mandatory_violations(stack: str) -> None:
    spec, manifests = shipped(stack)
    report = check(list(manifests), spec.policy_context())
    assert report.blocking == [], "\n".join(f"{f.rule.name} {f.object_ref}: {f.message}" for f in report.blocking)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_pass_every_rule_at_its_default_level(stack: str) -> None:
    """Even where the stack only warns (dev), nothing may be found: advisory mode is for
    trying changes out, not for shipping known violations."""
    spec, manifests = shipped(stack)
    strict = Context(spec.cluster.environment, spec.policy.model_copy(update={"enforcement": "mandatory"}))
    report = check(list(manifests), strict)
    assert report.blocking == [], "\n".join(f"{f.rule.name} {f.object_ref}: {f.message}" for f in report.blocking)
    assert report.advisory == []


def test_the_kubevirt_operator_manifest_passes_with_its_named_exceptions() -> None:
    report = check(upstream_documents(KUBEVIRT_OPERATOR), Context())
    assert report.blocking == []
    assert {(f.rule.name, f.object_ref) for f in report.excepted} == {
        ("namespace-pss-restricted", "Namespace kubevirt"),
        ("rbac-no-wildcards", "ClusterRole kubevirt-operator"),
    }


@pytest.mark.parametrize("release", ["v0.4.6", "v0.5.6"])
def test_the_raw_upstream_controller_fails_and_the_rendered_one_passes(release: str) -> None:
    """Upstream's controller Deployment has no security context; the builder hardens it.
    The rules see the difference, so the hardening cannot silently regress."""
    raw = check(upstream_documents(f"agent-sandbox/{release}/k8s/controller.yaml"), Context())
    failing = {f.rule.name for f in raw.blocking if f.kind == "Deployment"}
    assert {"pss-capabilities", "pss-privilege-escalation", "pss-run-as-non-root", "pss-seccomp"} <= failing


def test_every_exception_is_still_needed() -> None:
    """An exception that no longer matches anything is stale and must go."""
    _, dev = shipped("dev")
    objects = [*dev, *upstream_documents(KUBEVIRT_OPERATOR)]
    used = {f.exception for f in check(objects, Context()).excepted}
    assert set(UPSTREAM_EXCEPTIONS) == used


def test_exceptions_cover_only_what_they_name() -> None:
    operator = upstream_documents(KUBEVIRT_OPERATOR)
    role = next(d for d in operator if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "kubevirt-operator")
    widened = copy.deepcopy(role)
    widened["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]})
    renamed = copy.deepcopy(role)
    renamed["metadata"]["name"] = "my-operator"
    claimer = copy.deepcopy(next(
        m for m in shipped("prod")[1] if m["kind"] == "ClusterRole" and m["metadata"]["name"].endswith("-extensions")
    ))
    claimer["metadata"]["name"] = "gateway"
    report = check([widened, renamed, claimer], Context())
    blocking = {(f.rule.name, f.object_ref, f.message.split(" uses")[0]) for f in report.blocking}
    assert ("rbac-no-wildcards", "ClusterRole kubevirt-operator", f"rules[{len(role['rules'])}]") in blocking
    assert {f.object_ref for f in report.blocking} == {
        "ClusterRole kubevirt-operator", "ClusterRole my-operator", "ClusterRole gateway",
    }
