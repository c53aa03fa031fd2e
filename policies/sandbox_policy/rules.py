"""The rule catalogue: every family's rules in a fixed order (the order reports list them)."""

from __future__ import annotations

from . import kubevirt, namespaces, pod_security, rbac, sandbox, stack_level
from .engine import Report, evaluate
from .rule import Context, Rule

FAMILIES = (pod_security.FAMILY, sandbox.FAMILY, kubevirt.FAMILY, rbac.FAMILY, namespaces.FAMILY, stack_level.FAMILY)
RULES: tuple[Rule, ...] = tuple(rule for family in FAMILIES for rule in family.rules)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def check(manifests: list[dict], context: Context) -> Report:
    """All rules over `manifests` under the stack settings in `context`."""
    return evaluate(manifests, context, RULES)
