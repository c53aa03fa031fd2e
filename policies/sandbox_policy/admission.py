"""The rules as ValidatingAdmissionPolicies: the cluster itself refuses what the policy forbids.

Every object rule declares its check in CEL next to its Python (`cel=` on the rule); this
module turns each into a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, run by
the kube-apiserver itself, no webhook) and its bindings. The policy's message carries the
rule id, so one id names a finding from preview to admission. The stack's settings are
baked into the CEL, so a policy says exactly what `check --stack` says for that stack.

Scope: the objects a rule looks at (its `kinds`), in the stack's tenant namespaces (selected
by TENANT_LABEL, which names the tenant; the Namespace objects themselves included); the
cluster-scoped kinds (ClusterRole, ClusterRoleBinding) only where the stack manages them
(MANAGED_BY_LABEL), since judging every ClusterRole would refuse the cluster's own
(cluster-admin grants '*'); the KubeVirt CR in the namespace where the stack installs KubeVirt.

Rules admission cannot judge are listed by NOT_AT_ADMISSION with the reason.
"""

from __future__ import annotations

from typing import Literal

from . import RULES
from .cel import literal, variables, variables_used
from .exceptions import UPSTREAM_EXCEPTIONS
from .rule import Context, Rule
from .vocabulary import DOMAIN, MANAGED_BY_LABEL, TENANT_LABEL, Manifest

API_VERSION = "admissionregistration.k8s.io/v1"
AdmissionMode = Literal["off", "audit", "enforce"]
VALIDATION_ACTIONS: dict[str, list[str]] = {"audit": ["Audit", "Warn"], "enforce": ["Deny"]}
RULE_ANNOTATION = f"{DOMAIN}/rule"

CONTROLLER_NAMESPACES = ("agent-sandbox-system",)
"""Where the agent-sandbox controller runs (fixed upstream); KubeVirt's namespace is added per stack."""
CONTROLLER_WRITTEN = frozenset({"sandbox-reserved-metadata"})
"""Rules about what the controllers write: the reserved labels and annotations are the
controllers' own (the sandbox controller labels each Sandbox and pod it makes from a claim or a
pool, virt-controller each VMI), so requests by the controllers' service accounts are not judged
by them (matchConditions); everyone else's are."""

STACK_RULE_REASON = "needs every object of the stack at once; admission sees one object per request"

# Kind -> (API group, resource, namespaced) for every kind an object rule looks at.
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "Pod": ("", "pods", True),
    "PodTemplate": ("", "podtemplates", True),
    "ReplicationController": ("", "replicationcontrollers", True),
    "Namespace": ("", "namespaces", False),
    "Deployment": ("apps", "deployments", True),
    "ReplicaSet": ("apps", "replicasets", True),
    "StatefulSet": ("apps", "statefulsets", True),
    "DaemonSet": ("apps", "daemonsets", True),
    "Job": ("batch", "jobs", True),
    "CronJob": ("batch", "cronjobs", True),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies", True),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers", True),
    "ScaledObject": ("keda.sh", "scaledobjects", True),
    "Role": ("rbac.authorization.k8s.io", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings", False),
    "Sandbox": ("agents.x-k8s.io", "sandboxes", True),
    "SandboxTemplate": ("extensions.agents.x-k8s.io", "sandboxtemplates", True),
    "SandboxWarmPool": ("extensions.agents.x-k8s.io", "sandboxwarmpools", True),
    "SandboxClaim": ("extensions.agents.x-k8s.io", "sandboxclaims", True),
    "VirtualMachine": ("kubevirt.io", "virtualmachines", True),
    "VirtualMachineInstance": ("kubevirt.io", "virtualmachineinstances", True),
    "VirtualMachineInstanceReplicaSet": ("kubevirt.io", "virtualmachineinstancereplicasets", True),
    "VirtualMachinePool": ("pool.kubevirt.io", "virtualmachinepools", True),
    "KubeVirt": ("kubevirt.io", "kubevirts", True),
    "RuntimeClass": ("node.k8s.io", "runtimeclasses", False),
    "CiliumNetworkPolicy": ("cilium.io", "ciliumnetworkpolicies", True),
}
CLUSTER_WIDE = frozenset({"RuntimeClass"})
"""Cluster-scoped kinds judged wherever they come from: the runtime-class rule only restricts
RuntimeClasses named like the stack's sandboxing ones, whoever installs them."""


def is_enforceable(rule: Rule) -> bool:
    return rule.scope == "object" and rule.cel is not None


def enforceable(rules: tuple[Rule, ...] = RULES, *, kubevirt: bool = True) -> list[Rule]:
    """The rules admission judges: object rules with CEL (those only about the KubeVirt CR only
    where the stack runs KubeVirt)."""
    return [rule for rule in rules if is_enforceable(rule) and (kubevirt or set(rule.kinds or ()) != {"KubeVirt"})]


def not_at_admission(rules: tuple[Rule, ...] = RULES) -> dict[str, str]:
    """Rule name -> why admission cannot judge it."""
    return {rule.name: rule.not_at_admission or STACK_RULE_REASON for rule in rules if not is_enforceable(rule)}


def policy_name(rule: Rule, cluster: str) -> str:
    """Named after the stack's cluster too: stacks never share (and fight over) a policy, even
    where several deploy to one control plane, as the e2e suite does."""
    return f"sandbox-infra-{cluster}-{rule.name}"


def _exceptions_cel(rule: Rule) -> str:
    """Upstream exceptions covering a whole object (exceptions.py) let that object through; the
    ones scoped to parts of an object are part of the rule's own CEL."""
    return " || ".join(
        f"(object.kind == {literal(e.kind)} && object.metadata.name == {literal(e.name)}"
        f" && object.?metadata.?namespace.orValue('') == {literal(e.namespace)})"
        for e in UPSTREAM_EXCEPTIONS if e.rule == rule.name and e.subjects is None)


def expression(rule: Rule, context: Context) -> str:
    cel = rule.admission_cel(context)
    if cel is None:
        raise ValueError(f"rule {rule.name} has no CEL: {not_at_admission()[rule.name]}")
    excepted = _exceptions_cel(rule)
    return f"{excepted} || ({cel})" if excepted else cel


def _resource_rules(kinds: list[str]) -> list[dict]:
    by_group: dict[str, set[str]] = {}
    for kind in kinds:
        group, plural, _ = RESOURCES[kind]
        by_group.setdefault(group, set()).add(plural)
    return [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
             "resources": sorted(plurals)} for group, plurals in sorted(by_group.items())]


def _match_conditions(rule: Rule, kubevirt_namespace: str | None) -> list[dict]:
    if rule.name not in CONTROLLER_WRITTEN:
        return []
    namespaces = (*CONTROLLER_NAMESPACES, kubevirt_namespace) if kubevirt_namespace else CONTROLLER_NAMESPACES
    groups = [f"system:serviceaccounts:{ns}" for ns in namespaces]
    return [{"name": "not-by-the-controllers",
             "expression": f"!request.userInfo.groups.exists(g, g in {literal(groups)})"}]


def validating_policy(rule: Rule, context: Context, cluster: str, kubevirt_namespace: str | None = None) -> Manifest:
    cel = expression(rule, context)
    spec: dict = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": _resource_rules(sorted(rule.kinds or ()))}}
    conditions = _match_conditions(rule, kubevirt_namespace)
    if conditions:
        spec["matchConditions"] = conditions
    definitions = variables(rule.kinds)
    names = variables_used(cel, definitions)
    if names:  # an empty list is dropped by the API server, so render none
        spec["variables"] = [{"name": name, "expression": definitions[name]} for name in names]
    spec["validations"] = [{
        "expression": cel,
        "message": f"{rule.name}: {rule.description} Fix: {rule.remediation}",
        "reason": "Forbidden",
    }]
    return {
        "apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": policy_name(rule, cluster),
            "labels": dict([MANAGED_BY_LABEL]),
            "annotations": {RULE_ANNOTATION: rule.name, f"{DOMAIN}/severity": rule.severity,
                            f"{DOMAIN}/settings": context.source},
        },
        "spec": spec,
    }


def _scopes(kinds: frozenset[str], tenants: list[str], kubevirt_namespace: str | None) -> list[tuple[str, list[str], dict]]:
    """(binding name suffix, kinds, match) for each place the rule's kinds live."""
    tenant = sorted(k for k in kinds if k != "KubeVirt" and (RESOURCES[k][2] or k == "Namespace"))
    cluster = sorted(k for k in kinds if not RESOURCES[k][2] and k != "Namespace" and k not in CLUSTER_WIDE)
    everywhere = sorted(k for k in kinds if k in CLUSTER_WIDE)
    scopes = []
    if tenant and tenants:
        # This stack's tenants, not every namespace with the label: another stack's tenants
        # in the same cluster are judged by that stack's settings.
        scopes.append(("", tenant, {"namespaceSelector": {"matchExpressions": [
            {"key": TENANT_LABEL, "operator": "In", "values": sorted(tenants)}]}}))
    if cluster:
        scopes.append(("-cluster", cluster, {"objectSelector": {"matchLabels": dict([MANAGED_BY_LABEL])}}))
    if everywhere:
        scopes.append(("", everywhere, {}))
    if "KubeVirt" in kinds and kubevirt_namespace:
        scopes.append(("-kubevirt", ["KubeVirt"], {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [kubevirt_namespace]}]}}))
    return scopes


def bindings(rule: Rule, mode: AdmissionMode, cluster: str, tenants: list[str],
             kubevirt_namespace: str | None = None) -> list[Manifest]:
    return [{
        "apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name(rule, cluster) + suffix, "labels": dict([MANAGED_BY_LABEL]),
                     "annotations": {RULE_ANNOTATION: rule.name}},
        "spec": {
            "policyName": policy_name(rule, cluster),
            "validationActions": VALIDATION_ACTIONS[mode],
            "matchResources": {**match, "resourceRules": _resource_rules(kinds)},
        },
    } for suffix, kinds, match in _scopes(rule.kinds or frozenset(), tenants, kubevirt_namespace)]


def admission_policies(context: Context, mode: AdmissionMode, cluster: str, tenants: list[str],
                       kubevirt_namespace: str | None = None) -> list[Manifest]:
    """Every enforceable rule as a policy and its bindings, for the stack's tenant namespaces and
    its KubeVirt (nothing when mode is off)."""
    if mode == "off":
        return []
    objects: list[Manifest] = []
    for rule in enforceable(kubevirt=kubevirt_namespace is not None):
        objects.append(validating_policy(rule, context, cluster, kubevirt_namespace))
        objects += bindings(rule, mode, cluster, tenants, kubevirt_namespace)
    return objects
