"""Stack-level rules: consistency across all the objects a stack creates."""

from __future__ import annotations

from collections.abc import Iterator

from .rule import Context, Manifest, RuleFamily, Violation
from .vocabulary import TENANT_LABEL
from .workloads import annotations, as_list, dig, labels

FAMILY = RuleFamily("stack")


def _key(manifest: Manifest) -> tuple[str, str]:
    return str(dig(manifest, "metadata", "namespace") or ""), str(dig(manifest, "metadata", "name") or "")


@FAMILY.stack_rule(
    "stack-pool-references-template", severity="high",
    description="Every warm pool (and claim) references a template, or pool, that the stack itself defines, in "
                "its own namespace.",
    remediation="Point sandboxTemplateRef (warmPoolRef) at a template (pool) of the stack, or add the missing one.",
)
def pool_references_template(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    defined = {
        kind: {_key(m) for m in manifests if m.get("kind") == kind} for kind in ("SandboxTemplate", "SandboxWarmPool")
    }
    references = {
        # kind -> (path of the reference, kind it names)
        "SandboxWarmPool": [(("spec", "sandboxTemplateRef", "name"), "SandboxTemplate")],
        "SandboxClaim": [(("spec", "sandboxTemplateRef", "name"), "SandboxTemplate"),
                         (("spec", "warmPoolRef", "name"), "SandboxWarmPool")],
    }
    for index, manifest in enumerate(manifests):
        for path, target in references.get(str(manifest.get("kind")), []):
            name = dig(manifest, *path)
            if name is None and manifest.get("kind") == "SandboxClaim":
                continue  # a claim names a template (v1alpha1) or a pool (v1beta1), not both
            namespace = _key(manifest)[0]
            if (namespace, str(name)) not in defined[target]:
                yield index, f"{'.'.join(path)} names {target} {namespace}/{name}, which the stack does not define"


@FAMILY.stack_rule(
    "stack-unique-objects", severity="high",
    description="No two objects share kind, namespace and name: the second would silently overwrite the first.",
    remediation="Rename one of the objects (or drop the duplicate).",
)
def unique_objects(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    seen: dict[tuple[str, str, str], int] = {}
    for index, manifest in enumerate(manifests):
        namespace, name = _key(manifest)
        key = (str(manifest.get("kind")), namespace, name)
        if key in seen:
            yield index, f"duplicates object #{seen[key] + 1} ({key[0]} {namespace + '/' if namespace else ''}{name})"
        else:
            seen[key] = index


@FAMILY.stack_rule(
    "admission-policies-enforced", severity="high", settings=("environment",),
    description="In prod, every rule admission can judge is deployed as a ValidatingAdmissionPolicy with a binding "
                "that denies (policy.admission: enforce), so nothing reaches a tenant namespace past the policy.",
    remediation="Set policy.admission: enforce (the default) and keep the generated sandbox-infra-* "
                "ValidatingAdmissionPolicies and their bindings.",
)
def admission_policies_enforced(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    from .admission import RULE_ANNOTATION, enforceable  # admission.py reads the full rule list, this module is part of it

    tenants = [i for i, m in enumerate(manifests) if m.get("kind") == "Namespace" and TENANT_LABEL in labels(m)]
    if context.environment != "prod" or not tenants:
        return
    # The generated policies say which rule they enforce (annotation); a binding names its policy.
    rule_of = {dig(m, "metadata", "name"): annotations(m).get(RULE_ANNOTATION)
               for m in manifests if m.get("kind") == "ValidatingAdmissionPolicy"}
    denied = {rule_of.get(dig(m, "spec", "policyName")) for m in manifests
              if m.get("kind") == "ValidatingAdmissionPolicyBinding" and "Deny" in as_list(dig(m, "spec", "validationActions"))}
    expected = [rule.name for rule in enforceable(kubevirt=any(m.get("kind") == "KubeVirt" for m in manifests))]
    missing = sorted(name for name in expected if name not in rule_of.values())
    not_denying = sorted(name for name in expected if name in rule_of.values() and name not in denied)
    if missing:
        yield tenants[0], f"no admission policy in prod for the rules {', '.join(missing)}"
    if not_denying:
        yield tenants[0], ("no denying (validationActions: [Deny]) binding in prod for the admission policies of the rules "
                           f"{', '.join(not_denying)}")
