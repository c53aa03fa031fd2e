"""The generated ValidatingAdmissionPolicies on the live kube-apiserver say what the rules say.

Equality: every good and bad example of every rule (tests/policy_examples, the VM fixture),
every object of every shipped stack and every object the mutation corpus changes
(tests/test_policy_mutations.py) is sent to the API server (dry-run create) with each
applicable rule's generated policy in enforce (validationActions [Deny]), under the settings
the offline verdict used. Per (object, rule): the API server denies exactly when the rule
finds a violation no upstream exception covers. The figure is printed (docs/admission.md).

Each rule's policy is bound through its own label, so one request can carry every rule of
the object's kind: when a policy denies (the message names it), its label is removed and
the object sent again, until the API server admits it. Every rule is thus judged on its own.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from sandbox_policy import Context, Rule
from sandbox_policy.admission import (
    RULE_ANNOTATION,
    VALIDATION_ACTIONS,
    admission_policies,
    enforceable,
    expression,
    not_at_admission,
    validating_policy,
)
from sandbox_policy.exceptions import exception_for
from sandbox_policy.vocabulary import TENANT_LABEL

from components.manifests.agent_sandbox import NAMESPACE as AGENT_SANDBOX_NAMESPACE
from components.specs.loader import load_stack
from tests.policy_support import EXAMPLES, documents, example_context, require_upstream
from tests.test_policy_mutations import ANY_WORKLOAD, KUBEVIRT, MUTATIONS, stacks_under_test

from .admission_env import VAP_API, Activation, Manifest, namespaced, register_stand_ins, verdict
from .controlplane import AUDITED_NAMESPACE, ControlPlane
from .gateway import gateway_identity
from .helpers import SHIPPED_STACKS, render
from .kube import ApiError, Kube, wait_for

NAMESPACE = "admission-equality"
# Outside every reserved domain (RFC 2606 keeps .test for tests): no rule reads labels under it;
# our own domain will not do, since Sandboxes and claims may not carry it.
PROBE_DOMAIN = "admission-equality.e2e.test"
RULES = enforceable()
UPSTREAM_VAP = "agent-sandbox/v0.5.6/examples/policy/vap"


@dataclass(frozen=True)
class Example:
    source: str
    manifest: Manifest
    context: Context


def offline_denies(rule: Rule, manifest: Manifest, context: Context) -> bool:
    return any(exception_for(rule.name, manifest, v) is None for v in rule.violations(manifest, context))


def applicable(manifest: Manifest) -> list[Rule]:
    return [rule for rule in RULES if manifest.get("kind") in (rule.kinds or ())]


def rule_examples() -> Iterator[Example]:
    for directory in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        for which in ("good", "bad"):
            for index, doc in enumerate(documents(directory / f"{which}.yaml")):
                yield Example(f"{directory.name}/{which}.yaml#{index}", doc, example_context(directory.name))


def corpus_examples() -> Iterator[Example]:
    """The shipped stacks' objects (and prod with the VM fixture), then every object each
    mutation of the corpus changes or adds."""
    for stack, context, objects in stacks_under_test():
        for obj in objects:
            yield Example(f"{stack}: {obj['kind']} {obj['metadata']['name']}", obj, context)
        for index, target in enumerate(objects):
            if target["kind"] not in ANY_WORKLOAD | KUBEVIRT:
                continue
            for m in (m for m in MUTATIONS if target["kind"] in m.kinds):
                mutated = [o if o["kind"] == "CustomResourceDefinition" else copy.deepcopy(o) for o in objects]
                if not m.apply(mutated, index, context):
                    continue
                for position, obj in enumerate(mutated):
                    if position >= len(objects) or obj != objects[position]:
                        yield Example(f"{stack}: {m.name} on {target['kind']} {target['metadata']['name']}: "
                                      f"{obj['kind']} {obj['metadata']['name']}", obj, context)


class Judge:
    """Every (rule, settings) variant needed, installed once as the generated policy bound by its
    own label in enforce; then the verdict of each rule on each example. One per control plane:
    the labels number the variants."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.variants: dict[tuple[str, str], str] = {}  # (rule, CEL) -> probe label key
        self.rule_of_policy: dict[str, str] = {}

    def label(self, rule: Rule, context: Context) -> str:
        key = (rule.name, expression(rule, context))
        if key not in self.variants:
            n = len(self.variants)
            label, name = f"{PROBE_DOMAIN}/v{n}", f"eq-v{n}-{rule.name}"
            policy = validating_policy(rule, context, "equality")
            policy["metadata"] = {"name": name}
            self.kube.create(policy)
            self.kube.create({"apiVersion": VAP_API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
                              "spec": {"policyName": name, "validationActions": VALIDATION_ACTIONS["enforce"],
                                       "matchResources": {"objectSelector": {"matchExpressions": [
                                           {"key": label, "operator": "Exists"}]}}}})
            self.variants[key], self.rule_of_policy[name] = label, rule.name
        return self.variants[key]

    def judge(self, example: Example, namespace: str = NAMESPACE) -> tuple[dict[str, bool], str]:
        """Rule -> denied by admission, for every applicable rule; or ({}, why) when the API
        server refuses the object itself, before admission."""
        manifest = namespaced(example.manifest, namespace)
        labels = {self.label(rule, example.context): rule.name for rule in applicable(manifest)}
        manifest["metadata"]["labels"] = {**(manifest["metadata"].get("labels") or {}), **dict.fromkeys(labels, "on")}
        denied: set[str] = set()
        while True:
            result, policy, message = verdict(self.kube, manifest)
            if result == "refused":
                return {}, message
            if result == "admitted":
                return {rule: rule in denied for rule in labels.values()}, ""
            rule = self.rule_of_policy[policy]
            assert rule not in denied, f"{policy} denied again after its label was removed: {message}"
            denied.add(rule)
            label = next(k for k, v in labels.items() if v == rule)
            del manifest["metadata"]["labels"][label]


@pytest.fixture(scope="module")
def kube(plane: ControlPlane) -> Kube:
    require_upstream()
    kube = plane.client()
    register_stand_ins(kube)
    for namespace in (NAMESPACE, "kube-system"):
        if not kube.exists("v1", "Namespace", namespace):
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        # Pods name the default service account; without a controller-manager nobody creates it.
        if not kube.exists("v1", "ServiceAccount", "default", namespace):
            kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})
    return kube


@pytest.fixture(scope="module")
def judge(kube: Kube) -> Judge:
    return Judge(kube)


def test_admission_verdicts_equal_the_offline_verdicts(kube: Kube, judge: Judge) -> None:
    examples = [e for e in (*rule_examples(), *corpus_examples()) if applicable(e.manifest)]
    # The same object under the same settings is one example (stacks share objects).
    unique = list({(json.dumps(e.manifest, sort_keys=True), e.context.environment, e.context.policy.model_dump_json()): e
                   for e in examples}.values())
    for example in unique:
        for rule in applicable(namespaced(example.manifest, NAMESPACE)):
            judge.label(rule, example.context)
    Activation(kube, NAMESPACE).wait()

    agree: Counter[str] = Counter()
    disagree: dict[str, list[str]] = defaultdict(list)
    refused: list[str] = []
    bad_pairs = 0
    for example in unique:
        admission, why = judge.judge(example)
        if not admission:
            refused.append(f"{example.source}: {why}")
            continue
        manifest = namespaced(example.manifest, NAMESPACE)
        for rule in applicable(manifest):
            offline = offline_denies(rule, manifest, example.context)
            bad_pairs += offline
            if admission[rule.name] == offline:
                agree[rule.name] += 1
            else:
                disagree[rule.name].append(f"{example.source}: offline {'denies' if offline else 'admits'}, "
                                           f"admission {'denies' if admission[rule.name] else 'admits'}")
    pairs = sum(agree.values()) + sum(len(v) for v in disagree.values())
    # Printed, not asserted: `make e2e` shows it (-rP), also from an xdist worker.
    print(f"\nadmission equality: {len(unique)} examples ({len(unique) - len(refused)} judged, {len(refused)} refused "
          f"by the API server's own validation before admission), {len(RULES)} enforceable rules, "
          f"{len(judge.variants)} policy variants; {pairs} (example, rule) verdicts ({bad_pairs} violations): "
          f"{sum(agree.values())} agree, {sum(len(v) for v in disagree.values())} disagree")
    for rule in RULES:
        print(f"  {rule.name:40} {agree[rule.name]:5} agree {len(disagree.get(rule.name, [])):3} disagree")
    for line in refused:
        print(f"  refused before admission: {line[:300]}")
    for rule, lines in disagree.items():
        for line in lines[:10]:
            print(f"  DISAGREE {rule}: {line}")
    assert pairs > 1000 and bad_pairs > 100, "the corpus shrank: too few verdicts to mean anything"
    assert not refused, "examples must be valid Kubernetes objects, or admission never judges them"
    assert not disagree, f"admission and offline verdicts differ for {sorted(disagree)}"


def test_every_generated_policy_of_every_stack_is_accepted(kube: Kube) -> None:
    """The API server compiles each policy (and refuses expressions over its CEL cost budget);
    its type checking against the built-in kinds' schemas reports any field that does not exist."""
    warnings = []
    for stack in SHIPPED_STACKS:
        spec = load_stack(stack)
        for manifest in admission_policies(spec.policy_context(), "enforce", f"accepted-{stack}",
                                           [t.name for t in spec.tenants], "kubevirt"):
            if manifest["kind"] == "ValidatingAdmissionPolicy":
                kube.create(manifest)
    for _ in range(100):  # the type checker runs asynchronously
        policies = [p for p in kube.list(VAP_API, "ValidatingAdmissionPolicy")["items"]
                    if p["metadata"]["name"].startswith("sandbox-infra-accepted-")]
        if all(p.get("status", {}).get("observedGeneration") for p in policies):
            break
        time.sleep(0.1)
    for policy in policies:
        for warning in policy.get("status", {}).get("typeChecking", {}).get("expressionWarnings", []):
            warnings.append(f"{policy['metadata']['name']}: {warning['fieldRef']}: {warning['warning'][:300]}")
    # Printed, not asserted: `make e2e` shows it (-rP), also from an xdist worker.
    print(f"\n{len(policies)} generated policies of {len(SHIPPED_STACKS)} stacks accepted; "
          f"{len(warnings)} type-checking warnings")
    for line in warnings:
        print(f"  {line}")
    assert len(policies) == len(SHIPPED_STACKS) * len(RULES)
    assert warnings == []


def test_stack_bindings_guard_tenant_namespaces_and_the_stack_cluster_objects(kube: Kube) -> None:
    """The prod stack's own policies and bindings, as rendered: a violating template is refused in
    a tenant namespace with its rule id, admitted elsewhere; a wildcard ClusterRole is refused
    when the stack manages it, and the cluster's other ClusterRoles are left alone."""
    objects = [m for m in render("prod") if m["apiVersion"] == VAP_API]
    for manifest in objects:
        kube.create(manifest)
    tenant = next(m for m in render("prod") if m["kind"] == "Namespace" and m["metadata"]["name"] == "agents-prod")
    kube.create(tenant)
    # Someone else's tenant: labelled like one, but not this stack's.
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "eq-other", "labels": {**tenant["metadata"]["labels"], "sandbox-infra.dev/tenant": "eq-other"}}})
    Activation(kube, NAMESPACE).wait()
    template = next(m for m in render("prod") if m["kind"] == "SandboxTemplate")
    bad = copy.deepcopy(template)
    bad["spec"]["podTemplate"]["spec"]["hostPID"] = True
    result, policy, message = verdict(kube, bad)
    assert (result, policy) == ("denied", "sandbox-infra-prod-eu-west-pss-host-namespaces"), message
    assert "pss-host-namespaces: " in message
    assert verdict(kube, template)[0] == "admitted"
    assert verdict(kube, namespaced(bad, "eq-other"))[0] == "admitted"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "everything", "labels": {"app.kubernetes.io/managed-by": "sandbox-infra"}},
            "rules": [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}]}
    assert verdict(kube, role)[:2] == ("denied", "sandbox-infra-prod-eu-west-rbac-no-wildcards")
    del role["metadata"]["labels"]
    assert verdict(kube, role)[0] == "admitted"


def test_rules_not_enforceable_at_admission_say_why() -> None:
    reasons = not_at_admission()
    assert set(reasons) == {"sandbox-gpu-pool-opt-in", "tenant-namespace-guardrails", "stack-pool-references-template",
                            "stack-unique-objects", "admission-policies-enforced", "sandbox-egress-enforced",
                            "rbac-no-sandbox-identity-bindings"}
    assert all(len(reason) > 20 for reason in reasons.values())


# --- what admission promises, live: the controllers' exemption and audit mode --------------------------

SANDBOX_WRITER = "e2e-sandbox-writer"


def _tenant_namespace(kube: Kube, name: str) -> None:
    """A namespace the stack's tenant bindings select (as each tenant namespace is labelled)."""
    if not kube.exists("v1", "Namespace", name):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {TENANT_LABEL: name}}})


def _policies_of(rule: str, mode: str, cluster: str, tenants: list[str]) -> list[Manifest]:
    """The rule's policy and bindings exactly as a stack with these settings deploys them."""
    return [m for m in admission_policies(Context(), mode, cluster, tenants)  # type: ignore[arg-type]
            if m["metadata"]["annotations"][RULE_ANNOTATION] == rule]


def _writer(plane: ControlPlane, namespace: str, account: str) -> Kube:
    """A ServiceAccount's token, allowed to create Sandboxes (and nothing else): only admission
    then stands between it and the object."""
    admin = plane.client()
    if not admin.exists("v1", "Namespace", namespace):
        admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if not admin.exists("rbac.authorization.k8s.io/v1", "ClusterRole", SANDBOX_WRITER):
        admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": SANDBOX_WRITER},
                      "rules": [{"apiGroups": ["agents.x-k8s.io"], "resources": ["sandboxes"], "verbs": ["create"]}]})
    identity = gateway_identity(plane, namespace, account)
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": {"name": f"{SANDBOX_WRITER}-{namespace}-{account}"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SANDBOX_WRITER},
                  "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]})
    return identity.kube()


def test_the_controllers_service_accounts_are_not_judged_by_the_reserved_metadata_rule(
        kube: Kube, plane: ControlPlane) -> None:
    """The controller labels the Sandboxes it makes with its own keys: its ServiceAccount's request
    is admitted; the same request by the admin, or by a ServiceAccount of a tenant, is refused."""
    tenant = "exempt-tenant"
    _tenant_namespace(kube, tenant)
    for manifest in _policies_of("sandbox-reserved-metadata", "enforce", "exempt", [tenant]):
        kube.create(manifest)
    controller = _writer(plane, AGENT_SANDBOX_NAMESPACE, "agent-sandbox-controller")
    stranger = _writer(plane, tenant, "writer")
    Activation(kube, NAMESPACE).wait()
    sandbox = {"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
               "metadata": {"name": "from-a-pool", "namespace": tenant, "labels": {"agents.x-k8s.io/pool": "python"}},
               "spec": {"podTemplate": {"spec": {"containers": [{"name": "sandbox", "image": "registry.example.com/app:1.0"}]}}}}
    result, policy, message = verdict(kube, sandbox)
    assert (result, policy) == ("denied", "sandbox-infra-exempt-sandbox-reserved-metadata"), message
    assert "sandbox-reserved-metadata: " in message
    assert verdict(controller, sandbox) == ("admitted", "", "")
    result, policy, message = verdict(stranger, sandbox)
    assert (result, policy) == ("denied", "sandbox-infra-exempt-sandbox-reserved-metadata"), message
    print(f"\n{AGENT_SANDBOX_NAMESPACE}:agent-sandbox-controller: admitted; admin and {tenant}:writer: denied ({message[:160]}...)")

    # Once the controller made it, others may update the Sandbox without touching its keys
    # (UPDATE judges only reserved keys the request adds or changes), never add or change one.
    controller.create(sandbox)
    api = sandbox["apiVersion"]
    kube.patch(api, "Sandbox", "from-a-pool", tenant, {"metadata": {"labels": {"example.com/owner": "ops"}}})
    for change in ({"agents.x-k8s.io/pool": "other"}, {"agents.x-k8s.io/claim": "spoofed"}):
        with pytest.raises(ApiError) as refused:
            kube.patch(api, "Sandbox", "from-a-pool", tenant, {"metadata": {"labels": change}})
        assert refused.value.status == 403 and "sandbox-reserved-metadata: " in refused.value.message, refused.value
    assert kube.get(api, "Sandbox", "from-a-pool", tenant)["metadata"]["labels"] == {
        "agents.x-k8s.io/pool": "python", "example.com/owner": "ops"}


def test_audit_mode_admits_with_a_warning_to_the_client_and_an_audit_annotation(kube: Kube, plane: ControlPlane) -> None:
    """policy.admission: audit (dev): validationActions [Audit, Warn]. A violating object is stored;
    the client gets the rule's message as a Warning header; the API server's audit log records the
    failed validation as an audit annotation."""
    _tenant_namespace(kube, AUDITED_NAMESPACE)
    for manifest in _policies_of("pss-host-namespaces", "audit", "audit", [AUDITED_NAMESPACE]):
        assert manifest["kind"] != "ValidatingAdmissionPolicyBinding" or manifest["spec"]["validationActions"] == ["Audit", "Warn"]
        kube.create(manifest)
    Activation(kube, NAMESPACE).wait()
    template = {"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
                "metadata": {"name": "shares-host-pids", "namespace": AUDITED_NAMESPACE},
                "spec": {"podTemplate": {"spec": {"hostPID": True, "containers": [
                    {"name": "sandbox", "image": "registry.example.com/app:1.0"}]}}}}
    url = kube.resource(template["apiVersion"], template["kind"]).url(AUDITED_NAMESPACE)
    response = kube.request("POST", url, body=template, stream=True)
    assert response.status_code == 201, response.text
    warning = response.headers.get("Warning", "")
    response.close()
    policy = "sandbox-infra-audit-pss-host-namespaces"
    assert f"ValidatingAdmissionPolicy '{policy}'" in warning and "pss-host-namespaces: " in warning, warning
    assert kube.exists(template["apiVersion"], "SandboxTemplate", "shares-host-pids", AUDITED_NAMESPACE)

    def failures() -> list[dict]:
        found = []
        for line in plane.audit_log.read_text().splitlines() if plane.audit_log.exists() else []:
            event = json.loads(line)
            reference = event.get("objectRef", {})
            annotation = event.get("annotations", {}).get("validation.policy.admission.k8s.io/validation_failure")
            if annotation and reference.get("name") == "shares-host-pids" and event.get("verb") == "create":
                found += json.loads(annotation)
        return found

    recorded = wait_for("the audit annotation in the API server's audit log", failures, timeout=30)
    assert [(f["policy"], f["validationActions"]) for f in recorded] == [(policy, ["Audit", "Warn"])], recorded
    assert recorded[0]["message"].startswith("pss-host-namespaces: "), recorded
    print(f"\nWarning: {warning[:200]}\naudit annotation: {json.dumps(recorded)[:300]}")


# --- upstream's secure-sandbox policy (item 4) ---------------------------------------------------------


DIGEST = "@sha256:" + "0" * 64


def hardened(sandbox: Manifest) -> Manifest:
    """Upstream's compliant Sandbox with what it leaves out and Pod Security `restricted` and our
    sandbox rules require (no privilege escalation, a seccomp profile, requests, pinned images):
    the base both policies admit, so that each variant shows which policy checks its control."""
    sandbox = copy.deepcopy(sandbox)
    spec = sandbox["spec"]["podTemplate"]["spec"]
    spec["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    for container in spec.get("initContainers", []) + spec["containers"]:
        container["securityContext"]["allowPrivilegeEscalation"] = False
        container["resources"]["requests"] = container["resources"]["limits"]
        container["image"] = container["image"].split(":")[0] + DIGEST
    return sandbox


def upstream_cases() -> list[tuple[str, Manifest]]:
    """Upstream's own cases: the Sandboxes of its README (compliant, no runtime class, privileged
    init container), read from the pinned mirror; and one case per control its integration test
    names (policy_test.go is not in the pinned release's mirror), each a one-field change of the
    compliant Sandbox hardened to pass both policies."""
    readme = (require_upstream() / UPSTREAM_VAP / "README.md").read_text()
    blocks = [yaml.safe_load(block.split("```", 1)[0]) for block in readme.split("```yaml")[1:]]
    sandboxes = {b["metadata"]["name"]: b for b in blocks if isinstance(b, dict) and b.get("kind") == "Sandbox"}
    secure = hardened(sandboxes["secure-sandbox"])

    def variant(change: dict) -> Manifest:
        sandbox = copy.deepcopy(secure)
        spec = sandbox["spec"]["podTemplate"]["spec"]
        for path, value in change.items():
            *parents, leaf = path.split(".")
            target = spec
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            target[leaf] = value
        return sandbox

    cases = [(f"README {name}", sandbox) for name, sandbox in sandboxes.items()]
    cases += [("both-pass base", secure)]
    cases += [(f"test: {name}", variant(change)) for name, change in {
        "Runtime Class (runc)": {"runtimeClassName": "runc"},
        "HostNetwork is True": {"hostNetwork": True},
        "HostPID is True": {"hostPID": True},
        "HostIPC is True": {"hostIPC": True},
        "HostPort Used": {"containers.0.ports": [{"containerPort": 8080, "hostPort": 8080}]},
        "Automount Service Account Token": {"automountServiceAccountToken": True},
        "Projected Volume (Token)": {"volumes": [{"name": "t", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}}]}}]},
        "Projected Volume (Pod Certificate)": {"volumes": [{"name": "c", "projected": {"sources": [
            {"podCertificate": {"signerName": "example.com/signer", "keyType": "ED25519", "credentialBundlePath": "b"}}]}}]},
        "Projected Volume (ClusterTrustBundle)": {"volumes": [{"name": "b", "projected": {"sources": [
            {"clusterTrustBundle": {"signerName": "example.com/signer", "path": "ca.pem"}}]}}]},
        "HostPath Volume": {"volumes": [{"name": "h", "hostPath": {"path": "/var/run/docker.sock"}}]},
        "Unmasked ProcMount": {"containers.0.securityContext.procMount": "Unmasked"},
        "Sysctls Set": {"securityContext.sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]},
        "Privileged Container": {"containers.0.securityContext.privileged": True},
        "Capabilities (Didn't Drop)": {"containers.0.securityContext.capabilities": {}},
        "Capabilities (Added)": {"containers.0.securityContext.capabilities.add": ["NET_BIND_SERVICE"]},
        "RunAsRoot": {"containers.0.securityContext.runAsNonRoot": False},
        "Missing Resource Limits": {"containers.0.resources": {}},
        "Wrong Node Selector": {"nodeSelector": {}},
        "Missing Toleration": {"tolerations": []},
    }.items()]
    return cases


def test_upstream_secure_sandbox_cases_judged_by_both_policies(kube: Kube, judge: Judge) -> None:
    """Each case under upstream's policy (its own binding, as shipped) and under ours (the prod
    stack's settings, every rule of a Sandbox): where they differ, docs/admission.md says why."""
    base = require_upstream() / UPSTREAM_VAP
    for name in ("secure-sandbox-policy.yaml", "secure-sandbox-binding.yaml"):
        upstream_object = yaml.safe_load((base / name).read_text())
        kube.create(upstream_object)
    prod = load_stack("prod").policy_context()
    cases = upstream_cases()
    for _, case in cases:
        for rule in applicable(case):
            judge.label(rule, prod)
    Activation(kube, NAMESPACE).wait()
    rows, disagreements = [], 0
    for name, case in cases:
        # Upstream's binding judges every namespace but kube-system; ours are bound by label.
        ours, why = judge.judge(Example(name, case, prod), namespace="kube-system")
        assert why == "", why
        theirs = verdict(kube, namespaced(case, NAMESPACE))[0]
        our_rules = sorted(r for r, denied in ours.items() if denied)
        rows.append((name, theirs, our_rules))
        disagreements += (theirs == "denied") != bool(our_rules)
    # Printed, not asserted: `make e2e` shows it (-rP), also from an xdist worker.
    print(f"\nupstream secure-sandbox cases: {len(rows)}, verdicts differ on {disagreements}")
    for name, theirs, ours in rows:
        print(f"  {name:42} upstream {theirs:8} ours {'denied: ' + ', '.join(ours) if ours else 'admitted'}")
    verdicts = {name: (theirs, bool(ours)) for name, theirs, ours in rows}
    assert verdicts["both-pass base"] == ("admitted", False)
    differ = sorted(name for name, (theirs, ours) in verdicts.items() if (theirs == "denied") != ours)
    assert differ == sorted(DOCUMENTED_DIFFERENCES), "update docs/admission.md (upstream comparison) and this list"


# Where upstream's policy and ours disagree on its cases, and why (docs/admission.md).
DOCUMENTED_DIFFERENCES = {
    "README secure-sandbox": "ours is stricter: Pod Security restricted wants allowPrivilegeEscalation: false and a "
                             "seccomp profile; our sandbox rules want requests and pinned images",
    "test: Projected Volume (ClusterTrustBundle)": "upstream is stricter: a trust bundle holds public CA certificates, "
                                                   "no credential, so ours allows it",
    "test: Sysctls Set": "upstream is stricter: it forbids every sysctl; Pod Security restricted allows the safe, "
                         "namespaced ones (this one)",
    "test: Capabilities (Added)": "upstream is stricter: it forbids adding any capability; restricted allows "
                                  "NET_BIND_SERVICE (this one)",
    "test: Wrong Node Selector": "upstream is stricter: GKE scheduling (gVisor node pool), not isolation; ours is "
                                 "cluster-neutral",
    "test: Missing Toleration": "upstream is stricter: GKE scheduling, as above",
}
