"""Security policy rules: one set, used by `check`, the CrossGuard pack and the tests.

Each family module holds small pure functions over rendered manifests; `rules.py`
collects them into `RULES` in a fixed order (the order reports list them).

The names below load on first use: importing a light module of the package
(`sandbox_policy.errors`, `.vocabulary`) must not build every rule, so that the
command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "FAMILIES": "rules", "RULES": "rules", "RULES_BY_NAME": "rules", "check": "rules",
    "Finding": "engine", "Report": "engine", "evaluate": "engine",
    "Context": "rule", "Rule": "rule", "Violation": "rule",
}
__all__ = ["FAMILIES", "RULES", "RULES_BY_NAME", "Context", "Finding", "Report", "Rule", "Violation", "check", "evaluate"]

if TYPE_CHECKING:
    from .engine import Finding, Report, evaluate
    from .rule import Context, Rule, Violation
    from .rules import FAMILIES, RULES, RULES_BY_NAME, check


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sandbox_policy' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
