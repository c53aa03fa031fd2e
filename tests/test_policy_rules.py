"""Every rule against its good and bad examples (tests/policy_examples/<rule>/), the
kyverno/policies way, plus the places a pod or VM spec can be embedded."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_policy import RULES, RULES_BY_NAME, Context, Rule
from sandbox_policy.sandbox import from_allowed_registry, image_repository, looks_like_credential
from sandbox_policy.settings import PolicySpec
from sandbox_policy.workloads import describe

from .policy_support import EXAMPLES, documents, example_context


def _id(rule: Rule) -> str:
    return rule.name


def _examples(rule: Rule, which: str) -> list[dict[str, Any]]:
    path = EXAMPLES / rule.name / f"{which}.yaml"
    assert path.is_file(), f"rule {rule.name} has no {which} example ({path})"
    docs = documents(path)
    assert docs, f"{path} holds no objects"
    return docs


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_bad_examples_violate_the_rule(rule: Rule) -> None:
    docs, context = _examples(rule, "bad"), example_context(rule.name)
    if rule.scope == "stack":
        assert rule.stack_violations(docs, context), f"{rule.name}: the bad example set passes"
        return
    for doc in docs:
        assert rule.violations(doc, context), f"{rule.name}: bad example {describe(doc)} passes"


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_good_examples_pass_the_rule(rule: Rule) -> None:
    docs, context = _examples(rule, "good"), example_context(rule.name)
    if rule.scope == "stack":
        assert rule.stack_violations(docs, context) == []
        return
    for doc in docs:
        assert rule.violations(doc, context) == [], f"{rule.name}: good example {describe(doc)} fails"


def test_every_example_directory_belongs_to_a_rule() -> None:
    stale = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name not in RULES_BY_NAME)
    assert stale == [], f"examples for rules that do not exist: {stale}"


def test_rule_metadata_is_complete_and_names_are_stable() -> None:
    assert len(RULES) == len(RULES_BY_NAME), "rule names must be unique"
    for rule in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", rule.name), rule.name
        assert rule.severity in ("low", "medium", "high", "critical")
        assert rule.enforcement in ("advisory", "mandatory")
        assert len(rule.description) > 20 and len(rule.remediation) > 20, rule.name


def test_every_rule_is_documented_in_the_pack_readme() -> None:
    readme = (Path(__file__).parents[1] / "policies" / "README.md").read_text()
    rows = [f"| `{r.name}` | {r.severity} | {r.scope} | {r.description.replace('|', '/')} |" for r in RULES]
    missing = [row for row in rows if row not in readme]
    assert missing == [], "policies/README.md lacks (or has stale) rows:\n" + "\n".join(missing)


# --- pod and VM specs wherever they are embedded --------------------------------------------

def _pod_template(spec: dict, metadata: dict) -> dict:
    return {"metadata": {k: v for k, v in metadata.items() if k in ("labels", "annotations")}, "spec": spec}


POD_WRAPPERS = {
    "Deployment": lambda t: {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": t}},
    "StatefulSet": lambda t: {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": t}},
    "DaemonSet": lambda t: {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": t}},
    "ReplicaSet": lambda t: {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": t}},
    "Job": lambda t: {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": t}},
    "CronJob": lambda t: {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": t}}}},
    "Sandbox": lambda t: {"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox", "spec": {"podTemplate": t}},
    "SandboxTemplate": lambda t: {"apiVersion": "extensions.agents.x-k8s.io/v1alpha1", "kind": "SandboxTemplate",
                                  "spec": {"podTemplate": t}},
}
POD_RULES = [r for r in RULES if r.family == "pod-security"]


@pytest.mark.parametrize("kind", sorted(POD_WRAPPERS))
@pytest.mark.parametrize("rule", POD_RULES, ids=_id)
def test_pod_security_rules_find_pod_specs_wherever_embedded(rule: Rule, kind: str) -> None:
    pods = [d for d in _examples(rule, "bad") if d["kind"] == "Pod"]
    assert pods, f"{rule.name}: keep at least one bad Pod example to embed"
    for pod in pods:
        wrapped = POD_WRAPPERS[kind](_pod_template(copy.deepcopy(pod["spec"]), pod.get("metadata", {})))
        wrapped["metadata"] = {"name": "wrapped", "namespace": "team-a"}
        assert rule.violations(wrapped, Context()), f"{rule.name} misses the pod spec of a {kind}"


VM_WRAPPERS = {
    "VirtualMachine": lambda t: {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "spec": {"template": t}},
    "VirtualMachinePool": lambda t: {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
                                     "spec": {"virtualMachineTemplate": {"spec": {"template": t}}}},
    "VirtualMachineInstance": lambda t: {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", **t},
    "VirtualMachineInstanceReplicaSet": lambda t: {"apiVersion": "kubevirt.io/v1",
                                                   "kind": "VirtualMachineInstanceReplicaSet", "spec": {"template": t}},
}
VM_RULES = ["kubevirt-no-host-disk", "kubevirt-cloud-init-from-secret", "kubevirt-vm-resource-limits",
            "kubevirt-host-devices-allowlisted", "sandbox-no-service-account-token"]


@pytest.mark.parametrize("kind", sorted(VM_WRAPPERS))
@pytest.mark.parametrize("name", VM_RULES)
def test_vm_rules_find_vm_specs_wherever_embedded(name: str, kind: str) -> None:
    rule = RULES_BY_NAME[name]
    vms = [d for d in _examples(rule, "bad") if d["kind"] == "VirtualMachine"]
    assert vms, f"{name}: keep at least one bad VirtualMachine example to embed"
    for vm in vms:
        wrapped = VM_WRAPPERS[kind](copy.deepcopy(vm["spec"]["template"]))
        wrapped["metadata"] = {"name": "wrapped", "namespace": "team-a"}
        assert rule.violations(wrapped, example_context(name)), f"{name} misses the VM spec of a {kind}"


def test_kubevirt_rules_ignore_look_alike_kinds_of_other_api_groups() -> None:
    lookalike = {"apiVersion": "example.com/v1", "kind": "VirtualMachine", "metadata": {"name": "x"},
                 "spec": {"template": {"spec": {"volumes": [{"name": "d", "hostDisk": {"path": "/"}}]}}}}
    assert RULES_BY_NAME["kubevirt-no-host-disk"].violations(lookalike, Context()) == []


# --- helpers with many cases ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "expected"), [
    ("OPENAI_API_KEY", "sk-live-abcdefghijklmnopqrstuvwxyz", True),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
    ("DB_PASSWORD", "hunter2", True),
    ("GITHUB_TOKEN", "anything", True),
    ("SIGNING_KEY", "abc", True),
    ("NOTES", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc", True),
    ("CONFIG", "xoxb-1234567890-abcdefghij", True),
    ("UPSTREAM", "https://user:pass@example.com/", True),
    ("TOKEN_URL", "https://auth.example.com/oauth/token", False),
    ("API_KEY_FILE", "/var/run/secrets/key", False),
    ("PASSWORD_LENGTH_MIN", "", False),
    ("KEYBOARD_LAYOUT", "us", False),
    ("LOG_LEVEL", "debug", False),
    ("HOME", "/home/agent", False),
])
def test_credential_heuristic(name: str, value: str, expected: bool) -> None:
    assert looks_like_credential(name, value) is expected


@pytest.mark.parametrize(("image", "repository"), [
    ("python", "docker.io/library/python"),
    ("bitnami/redis", "docker.io/bitnami/redis"),
    ("ghcr.io/example/app", "ghcr.io/example/app"),
    ("localhost/app", "localhost/app"),
    ("registry:5000/app", "registry:5000/app"),
])
def test_image_repository_makes_the_registry_explicit(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def test_allowed_registries_match_whole_path_components() -> None:
    assert from_allowed_registry("ghcr.io/example/app", ["ghcr.io/example"])
    assert not from_allowed_registry("ghcr.io/example-evil/app", ["ghcr.io/example"])
    assert not from_allowed_registry("python", ["ghcr.io"])
    assert from_allowed_registry("python", ["docker.io/library"])


def test_tenant_guardrails_report_the_same_object_in_any_order() -> None:
    from sandbox_policy import RULES_BY_NAME, Context

    rule = RULES_BY_NAME["tenant-namespace-guardrails"]
    objects = [
        {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "metadata": {"name": "vm", "namespace": "t"}},
        {"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
         "metadata": {"name": "python", "namespace": "t"}},
    ]
    for ordered in (objects, objects[::-1]):
        reported = [ordered[i]["kind"] for i, _ in rule.stack_violations(ordered, Context())]
        assert reported == ["SandboxTemplate"]


def test_runtime_class_names_are_judged_even_where_none_is_required() -> None:
    rule = RULES_BY_NAME["sandbox-runtime-class"]
    lax = Context(policy=PolicySpec(require_runtime_class=False))
    bad = {d["metadata"]["name"]: d for d in documents(EXAMPLES / rule.name / "bad.yaml")}
    assert rule.violations(bad["untrusted-named-runc"], lax), "runc is no sandbox, required or not"
    assert rule.violations(bad["untrusted-runc"], lax) == [], "no runtime class is fine where none is required"


def test_egress_left_to_an_enforcer_run_by_hand_is_only_a_prod_and_staging_violation() -> None:
    rule = RULES_BY_NAME["sandbox-egress-enforced"]
    bad = documents(EXAMPLES / rule.name / "bad.yaml")
    assert rule.stack_violations(bad, Context(environment="staging"))
    assert rule.stack_violations(bad, Context(environment="dev")) == []


# --- IPv4-mapped IPv6 spellings of the metadata networks ------------------------------------

def _spellings() -> list[str]:
    """CIDR texts around the IPv4-mapped range: every way of writing a mapped network, and near misses."""
    import ipaddress

    texts = {"::ffff:169.254.169.254/128", "::ffff:a9fe:a9fe/128", "::FFFF:A9FE:A9FE/128", "0::ffff:a9fe:a9fe/128",
             "0:0:0:0:0:ffff:a9fe:a9fe/128", "0000:0000:0000:0000:0000:ffff:a9fe:a9fe/128", "::0:ffff:a9fe:a9fe/128",
             "0:0:0:0::ffff:a9fe:a9fe/128", "::0:0:0:0:ffff:a9fe:a9fe/128", "0:0:0:0:0:ffff::/96", "0:0:0:0:0:ffff:0::/96",
             "0:0:0:0:0:ffff::a9fe/128", "::ffff:0:0/96", "::ffff:0.0.0.0/96", "::ffff:a9fe:a9fe/096",
             "::ffff:169.254.0.0/112", "::ffff:a9fe:0/100", "::ffff:a9fe:a9fe/95", "::fffe:a9fe:a9fe/128",
             "0:0:0:0:ffff:a9fe:a9fe:1/128", "::ffff:a9fe:a9fe:1/128", "ffff::a9fe:a9fe/128", "::ffff:999.0.0.1/128",
             "0:ffff:a9fe:a9fe/128", "::1:ffff:a9fe:a9fe/128", "::/0", "169.254.169.254/32"}
    for prefix in (96, 104, 112, 120, 128):
        for address in ("169.254.169.254", "10.0.0.1", "0.0.0.0"):
            mapped = ipaddress.IPv6Address(f"::ffff:{address}")
            texts |= {f"{mapped.compressed}/{prefix}", f"{mapped.exploded}/{prefix}", f"::ffff:{address}/{prefix}"}
    return sorted(texts)


@pytest.mark.parametrize("text", _spellings())
def test_the_cel_pattern_reads_exactly_the_mapped_spellings_ipaddress_reads(text: str) -> None:
    """The CEL rewrites a CIDR to IPv4 when MAPPED_CIDR matches it (Kubernetes' cidr() refuses
    mapped spellings); the Python, when ipaddress reads a network inside ::ffff:0:0/96."""
    import ipaddress

    from sandbox_policy.sandbox import MAPPED_CIDR
    from sandbox_policy.vocabulary import as_ipv4

    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        network = None
    # Octets over 255 match the pattern but not cidr(), which leaves them unjudged like ipaddress.
    mapped = network is not None and as_ipv4(network) is not network
    assert bool(MAPPED_CIDR.match(text.lower())) == mapped or text == "::ffff:999.0.0.1/128", text


@pytest.mark.parametrize(("cidr", "problem"), [
    ("::ffff:169.254.169.254/128", "::ffff:a9fe:a9fe/128 (IPv4-mapped: 169.254.169.254/32), inside"),
    ("::ffff:a9fe:a9fe/128", "::ffff:a9fe:a9fe/128 (IPv4-mapped: 169.254.169.254/32), inside"),
    ("0:0:0:0:0:ffff:a9fe:a9fe/128", "(IPv4-mapped: 169.254.169.254/32), inside"),
    ("::ffff:a9fe:0/112", "(IPv4-mapped: 169.254.0.0/16), inside"),
    ("::ffff:169.0.0.0/104", "(IPv4-mapped: 169.0.0.0/8) without excepting the metadata range 169.254.0.0/16"),
    ("::ffff:0:0/96", "(IPv4-mapped: 0.0.0.0/0) without excepting the metadata range 169.254.0.0/16"),
])
@pytest.mark.parametrize("kind", ["NetworkPolicy", "SandboxTemplate", "CiliumNetworkPolicy"])
def test_metadata_egress_in_every_spelling(kind: str, cidr: str, problem: str) -> None:
    rule = RULES_BY_NAME["sandbox-no-metadata-egress"]
    if kind == "NetworkPolicy":
        manifest = {"kind": kind, "spec": {"egress": [{"to": [{"ipBlock": {"cidr": cidr}}]}]}}
    elif kind == "SandboxTemplate":
        manifest = {"kind": kind, "spec": {"networkPolicy": {"egress": [{"to": [{"ipBlock": {"cidr": cidr}}]}]}}}
    else:
        manifest = {"kind": kind, "spec": {"egress": [{"toCIDR": [cidr]}]}}
    messages = [v.message for v in rule.violations(manifest, Context())]
    assert len(messages) == 1 and problem in messages[0], messages
    # Excepting the range, in the IPv4 or the mapped spelling, is what makes a wider prefix pass.
    for excepted in ("169.254.0.0/16", "::ffff:169.254.0.0/112"):
        block = {"cidr": cidr, "except": [excepted]}
        if kind == "CiliumNetworkPolicy":
            manifest = {"kind": kind, "spec": {"egress": [{"toCIDRSet": [block]}]}}
        else:
            manifest["spec"] = {"egress": [{"to": [{"ipBlock": block}]}]}
            if kind == "SandboxTemplate":
                manifest["spec"] = {"networkPolicy": manifest["spec"]}
        assert bool(rule.violations(manifest, Context())) == ("inside" in problem), (cidr, excepted)


# --- bindings to the identity sandboxes run as ------------------------------------------------

def _identity_violations(*bindings: dict[str, Any]) -> list[str]:
    rule = RULES_BY_NAME["rbac-no-sandbox-identity-bindings"]
    docs = documents(EXAMPLES / "rbac-no-sandbox-identity-bindings" / "good.yaml")
    templates = [d for d in docs if d["kind"] == "SandboxTemplate"]
    return [v.message for _, v in rule.stack_violations([*templates, *bindings], Context())]


def _binding(kind: str, *subjects: dict[str, str], namespace: str = "team-a") -> dict[str, Any]:
    meta = {"name": "b", "namespace": namespace} if kind == "RoleBinding" else {"name": "b"}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": list(subjects)}


@pytest.mark.parametrize(("subject", "spelled"), [
    ({"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}, "the ServiceAccount team-a/default"),
    ({"kind": "ServiceAccount", "name": "sandbox-tools", "namespace": "team-a"}, "the ServiceAccount team-a/sandbox-tools"),
    ({"kind": "User", "name": "system:serviceaccount:team-a:default"}, "the user system:serviceaccount:team-a:default"),
    ({"kind": "Group", "name": "system:serviceaccounts:team-a"}, "the group system:serviceaccounts:team-a, which holds"),
    ({"kind": "Group", "name": "system:serviceaccounts"}, "the group system:serviceaccounts, which holds"),
    ({"kind": "Group", "name": "system:authenticated"}, "the group system:authenticated, which holds"),
])
@pytest.mark.parametrize("kind", ["RoleBinding", "ClusterRoleBinding"])
def test_each_spelling_of_a_sandbox_identity_is_flagged(kind: str, subject: dict[str, str], spelled: str) -> None:
    messages = _identity_violations(_binding(kind, {"kind": "ServiceAccount", "name": "gateway", "namespace": "team-a"},
                                             subject))
    assert messages and all(m.startswith(f"subjects[1] is {spelled}") for m in messages), messages
    assert all("grants sandboxed code ClusterRole edit" in m for m in messages)


def test_a_service_account_subject_without_namespace_is_read_in_the_bindings_namespace() -> None:
    subject = {"kind": "ServiceAccount", "name": "default"}
    assert _identity_violations(_binding("RoleBinding", subject))  # team-a's default
    assert not _identity_violations(_binding("RoleBinding", subject, namespace="team-b"))
    assert not _identity_violations(_binding("ClusterRoleBinding", subject))  # no namespace: not team-a's


def test_other_accounts_and_namespaces_are_not_sandbox_identities() -> None:
    for subject in ({"kind": "ServiceAccount", "name": "default", "namespace": "team-b"},
                    {"kind": "ServiceAccount", "name": "gateway", "namespace": "team-a"},
                    {"kind": "User", "name": "system:serviceaccount:team-b:default"},
                    {"kind": "User", "name": "system:serviceaccount:team-a:defaults"},
                    {"kind": "Group", "name": "system:serviceaccounts:team-b"},
                    {"kind": "Group", "name": "system:serviceaccounts:team-a-other"}):
        assert not _identity_violations(_binding("ClusterRoleBinding", subject)), subject
