"""The generated admission policies, offline: what is generated for which rule, per mode, and
that a prod stack cannot drop them without the policy saying so. Their equality with the rules
is measured on a live API server (tests/e2e/test_admission.py)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from sandbox_policy import RULES, Context, check
from sandbox_policy.admission import (
    RESOURCES,
    admission_policies,
    enforceable,
    not_at_admission,
    policy_name,
)
from sandbox_policy.cel import variables

from components.manifests.stack import render_stack
from components.upstream import UpstreamLoader

from .policy_support import SHIPPED_STACKS, require_upstream, shipped

VAP_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def test_every_rule_is_enforceable_at_admission_or_says_why() -> None:
    for rule in RULES:
        if rule.scope == "stack":
            assert rule.cel is None, f"{rule.name}: a stack rule cannot be judged one object at a time"
        assert (rule.cel is not None) != (rule.name in not_at_admission()), rule.name
        assert rule.kinds is None or set(rule.kinds) <= set(RESOURCES), f"{rule.name}: kinds without a resource"
    assert len(enforceable()) == 39


def test_docs_list_every_rule_admission_cannot_judge() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "admission.md").read_text()
    missing = [f"| `{name}` | {reason}" for name, reason in not_at_admission().items() if f"| `{name}` | {reason}" not in docs]
    assert missing == [], "docs/admission.md lacks (or has stale) rows:\n" + "\n".join(missing)


def test_a_policy_looks_up_embedded_templates_only_for_the_kinds_it_matches() -> None:
    # Each matching policy evaluates its variables on every request: no branch for a kind it
    # never sees, one branch per path, and no test at all where its kinds share one path.
    assert variables(frozenset({"Sandbox", "SandboxTemplate"}))["pod"] == "object.?spec.?podTemplate.orValue({})"
    assert variables(frozenset({"SandboxTemplate", "NetworkPolicy"}))["pod"] == (
        'object.kind == "SandboxTemplate" ? object.?spec.?podTemplate.orValue({}) : {}')
    every = variables()["pod"]
    assert every.startswith('object.kind == "Pod" ? object : object.kind in ["Sandbox", "SandboxTemplate"] ? ')
    assert every.count(" ? ") == 5 and every.endswith(" : {}")
    assert variables(frozenset({"VirtualMachineInstance"}))["vmSpec"] == "{}"  # no VM around a VMI
    assert variables(frozenset({"VirtualMachineInstance"}))["vmi"] == "object"
    for rule in enforceable():
        named = set(re.findall(r'"(\w+)"', variables(rule.kinds)["pod"] + variables(rule.kinds)["vmi"]))
        assert named <= set(rule.kinds or ()), rule.name


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_policies_follow_the_stack_setting(stack: str) -> None:
    spec, manifests = shipped(stack)
    policies = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"]
    bindings = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"]
    kubevirt = spec.kubevirt is not None
    assert sorted(p["metadata"]["name"] for p in policies) == sorted(
        policy_name(rule, spec.cluster.name) for rule in enforceable(kubevirt=kubevirt))
    actions = {"audit": ["Audit", "Warn"], "enforce": ["Deny"]}[spec.policy.admission]
    assert {b["spec"]["policyName"] for b in bindings} == {p["metadata"]["name"] for p in policies}
    assert all(b["spec"]["validationActions"] == actions for b in bindings)
    for policy in policies:
        rule = policy["metadata"]["annotations"]["sandbox-infra.dev/rule"]
        assert policy["spec"]["validations"][0]["message"].startswith(f"{rule}: ")
    # The policy objects themselves pass the rules (check_stack runs them in test_policy_stacks).
    assert check(list(manifests), spec.policy_context()).passed


def test_tenant_bindings_select_tenant_namespaces_and_cluster_objects_only_when_the_stack_manages_them() -> None:
    _, manifests = shipped("dev")
    bindings = {b["metadata"]["name"]: b["spec"]["matchResources"] for b in manifests
                if b["kind"] == "ValidatingAdmissionPolicyBinding"}
    tenant = bindings["sandbox-infra-dev-rbac-no-wildcards"]
    assert tenant["namespaceSelector"] == {"matchExpressions": [
        {"key": "sandbox-infra.dev/tenant", "operator": "In", "values": ["agents-dev"]}]}
    assert tenant["resourceRules"][0]["resources"] == ["roles"]
    cluster = bindings["sandbox-infra-dev-rbac-no-wildcards-cluster"]
    assert cluster["objectSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "sandbox-infra"}}
    assert cluster["resourceRules"][0]["resources"] == ["clusterroles"]
    assert bindings["sandbox-infra-dev-kubevirt-uninstall-blocks-on-workloads-kubevirt"]["namespaceSelector"][
        "matchExpressions"][0]["values"] == ["kubevirt"]


def test_admission_off_deploys_nothing() -> None:
    spec, _ = shipped("dev")
    assert admission_policies(spec.policy_context(), "off", "dev", ["agents-dev"]) == []


@pytest.mark.parametrize("mode", ["off", "audit"])
def test_prod_without_enforcing_policies_is_a_mandatory_violation(mode: str) -> None:
    spec, _ = shipped("prod")
    weakened = spec.model_copy(update={"policy": spec.policy.model_copy(update={"admission": mode})})
    manifests = render_stack(weakened, UpstreamLoader(mirror=require_upstream(), allow_download=False))
    report = check(manifests, weakened.policy_context())
    assert [f.rule.name for f in report.blocking] == ["admission-policies-enforced"]


def test_deleting_one_policy_in_prod_is_a_mandatory_violation() -> None:
    spec, manifests = shipped("prod")
    kept = [copy.deepcopy(m) for m in manifests if m["metadata"]["name"] != "sandbox-infra-prod-eu-west-pss-privileged"]
    report = check(kept, spec.policy_context())
    assert [(f.rule.name, f.message) for f in report.blocking] == [
        ("admission-policies-enforced", "no admission policy in prod for the rules pss-privileged")]


def test_dev_may_audit_or_switch_admission_off() -> None:
    spec, _ = shipped("dev")
    assert spec.policy.admission == "audit"
    off = spec.model_copy(update={"policy": spec.policy.model_copy(update={"admission": "off"})})
    manifests = render_stack(off, UpstreamLoader(mirror=require_upstream(), allow_download=False))
    assert not [m for m in manifests if m["kind"] in VAP_KINDS]
    assert check(manifests, Context("dev", off.policy.model_copy(update={"enforcement": "mandatory"}))).passed
