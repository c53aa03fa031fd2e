"""RBAC rules: least privilege for everything the stack grants."""

from __future__ import annotations

from collections.abc import Iterator

from .cel import literal
from .exceptions import UPSTREAM_EXCEPTIONS
from .rule import Context, Manifest, RuleFamily, Violation
from .workloads import SANDBOX_POD_KINDS, as_dict, as_list, describe, dig, pod_specs

FAMILY = RuleFamily("rbac")
ROLE_KINDS = frozenset({"Role", "ClusterRole"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})

BROAD_GROUPS = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})
ANONYMOUS_USERS = frozenset({"system:anonymous"})

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection", "*"})
# What a claimer must never write: the objects that decide which code runs where.
WORKLOAD_RESOURCES = {
    "": ("pods",),
    "agents.x-k8s.io": ("sandboxes",),
    "extensions.agents.x-k8s.io": ("sandboxtemplates", "sandboxwarmpools"),
}


def _rules(manifest: Manifest) -> Iterator[tuple[int, dict]]:
    for index, rule in enumerate(as_list(manifest.get("rules"))):
        if isinstance(rule, dict):
            yield index, rule


def _no_wildcards_cel() -> str:
    """no_wildcards in CEL; the upstream exceptions scoped to API groups are part of the rule's
    own check here, since only the CEL sees which rule of the role holds the wildcard."""
    wildcard = "['verbs', 'resources', 'apiGroups', 'nonResourceURLs'].exists(f, '*' in r[?f].orValue([]))"
    subject = "'apiGroups=' + (r.?apiGroups.orValue([]).size() > 0 ? r.apiGroups.join(',') : '-')"
    excepted = " || ".join(
        f"(object.kind == {literal(e.kind)} && object.metadata.name == {literal(e.name)}"
        f" && object.?metadata.?namespace.orValue('') == {literal(e.namespace)} && {subject} in {literal(e.subjects)})"
        for e in UPSTREAM_EXCEPTIONS if e.rule == "rbac-no-wildcards" and e.subjects is not None) or "false"
    return f"object.?rules.orValue([]).all(r, !({wildcard}) || {excepted})"


@FAMILY.object_rule(
    "rbac-no-wildcards", severity="critical", kinds=ROLE_KINDS,
    description="Roles authored by the stack grant named verbs on named resources: no '*'.",
    remediation="List the exact verbs, resources and API groups the subject needs.",
    cel=_no_wildcards_cel(),
)
def no_wildcards(manifest: Manifest, context: Context) -> Iterator[Violation]:
    for index, rule in _rules(manifest):
        fields = [f for f in ("verbs", "resources", "apiGroups", "nonResourceURLs") if "*" in as_list(rule.get(f))]
        if fields:
            groups = ",".join(str(g) for g in as_list(rule.get("apiGroups"))) or "-"
            yield Violation(f"rules[{index}] uses '*' in {', '.join(fields)} (apiGroups: {groups})", f"apiGroups={groups}")


@FAMILY.object_rule(
    "rbac-no-broad-group-bindings", severity="critical", kinds=BINDING_KINDS,
    description="No bindings to system:authenticated, system:unauthenticated, system:serviceaccounts, a "
                "namespace-wide system:serviceaccounts:<ns> group, or system:anonymous.",
    remediation="Bind the specific service accounts (kind: ServiceAccount, name, namespace) that need the role.",
    cel=f"object.?subjects.orValue([]).all(s, !(s.?kind.orValue('') == 'Group'"
        f" && (s.?name.orValue('') in {literal(BROAD_GROUPS)} || s.?name.orValue('').startsWith('system:serviceaccounts:')))"
        f" && !(s.?kind.orValue('') == 'User' && s.?name.orValue('') in {literal(ANONYMOUS_USERS)}))",
)
def no_broad_group_bindings(manifest: Manifest, context: Context) -> Iterator[str]:
    for index, subject in enumerate(as_list(manifest.get("subjects"))):
        subject = as_dict(subject)
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "Group" and (name in BROAD_GROUPS or name.startswith("system:serviceaccounts:")):
            yield f"subjects[{index}] binds the broad group {name}"
        elif kind == "User" and name in ANONYMOUS_USERS:
            yield f"subjects[{index}] binds the anonymous user"


def grants(rule: dict, group: str, resource: str, verbs: frozenset[str]) -> list[str]:
    """The verbs of `verbs` that an RBAC rule grants on group/resource (or its subresources)."""
    groups = as_list(rule.get("apiGroups"))
    resources = [str(r) for r in as_list(rule.get("resources"))]
    if group not in groups and "*" not in groups:
        return []
    if not any(r in ("*", resource) or r.startswith(resource + "/") for r in resources):
        return []
    granted = {str(v) for v in as_list(rule.get("verbs"))}
    return sorted(granted & verbs)


def _grants_cel(group: str, resource: str, verbs: frozenset[str]) -> str:
    """grants(r, ...) is not empty, in CEL."""
    return (f"(r.?apiGroups.orValue([]).exists(g, g in {literal([group, '*'])})"
            f" && r.?resources.orValue([]).exists(x, x in {literal(['*', resource])} || x.startsWith({literal(resource + '/')}))"
            f" && r.?verbs.orValue([]).exists(v, v in {literal(verbs)}))")


def is_claimer_role(manifest: Manifest) -> bool:
    """A role that can create SandboxClaims is a claimer's (a gateway's) role."""
    return any(grants(rule, "extensions.agents.x-k8s.io", "sandboxclaims", frozenset({"create", "*"}))
               for _, rule in _rules(manifest))


def _claimers_cel() -> str:
    claimer = _grants_cel("extensions.agents.x-k8s.io", "sandboxclaims", frozenset({"create", "*"}))
    writes = " || ".join(_grants_cel(group, resource, WRITE_VERBS)
                         for group, resources in WORKLOAD_RESOURCES.items() for resource in resources)
    return f"!object.?rules.orValue([]).exists(r, {claimer}) || !object.?rules.orValue([]).exists(r, {writes})"


@FAMILY.object_rule(
    "rbac-claimers-cannot-write-workloads", severity="high", kinds=ROLE_KINDS,
    description="A role that can create SandboxClaims must not write pods, sandboxes, templates or warm pools: "
                "a gateway that could would run arbitrary pods in the tenant namespace.",
    remediation="Give claimers create/delete on sandboxclaims and read-only access to what backs them.",
    cel=_claimers_cel(),
)
def claimers_cannot_write_workloads(manifest: Manifest, context: Context) -> Iterator[Violation]:
    if not is_claimer_role(manifest):
        return
    for index, rule in _rules(manifest):
        for group, resources in WORKLOAD_RESOURCES.items():
            for resource in resources:
                verbs = grants(rule, group, resource, WRITE_VERBS)
                if verbs:
                    yield Violation(f"rules[{index}] lets a claimer {'/'.join(verbs)} {resource}", resource)


# Groups every service account belongs to, whatever its namespace.
ALL_SERVICE_ACCOUNT_GROUPS = frozenset({"system:serviceaccounts", "system:authenticated"})


def sandbox_identities(manifests: list[Manifest]) -> dict[tuple[str, str], str]:
    """(namespace, service account) each sandbox's pods run as -> the template (or Sandbox) that
    says so. No serviceAccountName means the namespace's `default`, as the API server fills it."""
    identities: dict[tuple[str, str], str] = {}
    for manifest in manifests:
        if manifest.get("kind") not in SANDBOX_POD_KINDS:
            continue
        namespace = str(dig(manifest, "metadata", "namespace") or "default")
        for pod in pod_specs(manifest):
            account = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default"
            identities.setdefault((namespace, str(account)), describe(manifest))
    return identities


def _names_identity(subject: dict, binding: Manifest, namespace: str, account: str) -> str | None:
    """How `subject` of `binding` names the service account, or None when it does not."""
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "ServiceAccount":
        # RBAC reads a ServiceAccount subject without namespace in the RoleBinding's own namespace.
        default = dig(binding, "metadata", "namespace") if binding.get("kind") == "RoleBinding" else None
        if name == account and (subject.get("namespace") or default or "default") == namespace:
            return f"the ServiceAccount {namespace}/{account}"
    elif kind == "User" and name == f"system:serviceaccount:{namespace}:{account}":
        return f"the user {name}"
    elif kind == "Group" and (name in ALL_SERVICE_ACCOUNT_GROUPS or name == f"system:serviceaccounts:{namespace}"):
        return f"the group {name}, which holds {namespace}/{account}"
    return None


@FAMILY.stack_rule(
    "rbac-no-sandbox-identity-bindings", severity="high",
    description="No RoleBinding or ClusterRoleBinding grants anything to the service account a sandbox's pods run "
                "as, in any spelling: the ServiceAccount, the system:serviceaccount:<ns>:<name> user, or a "
                "system:serviceaccounts[:<ns>] group.",
    remediation="Bind the role to a service account of its own (the gateway's, a controller's), never to the one "
                "sandboxed code runs as; give a template a dedicated serviceAccountName if another workload in the "
                "namespace needs the default one bound.",
)
def no_sandbox_identity_bindings(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation]]:
    identities = sandbox_identities(manifests)
    for index, binding in enumerate(manifests):
        if binding.get("kind") not in BINDING_KINDS:
            continue
        role = as_dict(binding.get("roleRef"))
        for position, subject in enumerate(as_list(binding.get("subjects"))):
            for (namespace, account), owner in sorted(identities.items()):
                spelled = _names_identity(as_dict(subject), binding, namespace, account)
                if spelled is not None:
                    yield index, Violation(
                        f"subjects[{position}] is {spelled}, as which the pods of {owner} run: it grants sandboxed "
                        f"code {role.get('kind', 'the role')} {role.get('name', '?')}", f"{namespace}/{account}")
