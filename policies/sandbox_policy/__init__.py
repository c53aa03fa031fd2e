"""Security policy rules: one set, used by `check`, the CrossGuard pack and the tests.

Each family module holds small pure functions over rendered manifests; this
package collects them into `RULES` in a fixed order (the order reports list them).
"""

from __future__ import annotations

from . import kubevirt, namespaces, pod_security, rbac, sandbox, stack_level
from .engine import Finding, Report, evaluate
from .rule import Context, Rule, Violation

FAMILIES = (pod_security.FAMILY, sandbox.FAMILY, kubevirt.FAMILY, rbac.FAMILY, namespaces.FAMILY, stack_level.FAMILY)
RULES: tuple[Rule, ...] = tuple(rule for family in FAMILIES for rule in family.rules)
RULES_BY_NAME = {rule.name: rule for rule in RULES}

__all__ = ["RULES", "RULES_BY_NAME", "Context", "Finding", "Report", "Rule", "Violation", "check", "evaluate"]


def check(manifests: list[dict], context: Context) -> Report:
    """All rules over `manifests` under the stack settings in `context`."""
    return evaluate(manifests, context, RULES)
