"""What a policy rule is: a small pure function plus the metadata every use needs.

One rule, three uses: the offline `check` command, the CrossGuard pack in
`policies/` and the tests all read the same `Rule` objects. Object rules look at
one rendered manifest; stack rules look at the whole list (for checks that span
objects, such as "every pool references a template of the stack").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .settings import PolicySpec
from .vocabulary import Enforcement, Environment, Manifest

Severity = Literal["low", "medium", "high", "critical"]


class Violation(NamedTuple):
    """One problem a rule found. `subject` names the offending part (an API group,
    a container) so that an upstream exception can be scoped to it."""

    message: str
    subject: str = ""


# Settings used when nothing says which stack the objects belong to (`check -f FILE`,
# or the pack without stack config): the strictest environment.
STRICT_POLICY = PolicySpec(enforcement="mandatory", require_runtime_class=True)


@dataclass(frozen=True)
class Context:
    """The per-stack settings some rules depend on (caps, allowlists, environment)."""

    environment: Environment = "prod"
    policy: PolicySpec = STRICT_POLICY
    source: str = "strict defaults (environment prod)"

    def enforcement_of(self, rule: Rule) -> Enforcement:
        """A stack with `policy.enforcement: advisory` reports everything as advisory;
        otherwise each rule keeps its own default level."""
        return "advisory" if self.policy.enforcement == "advisory" else rule.enforcement


ObjectCheck = Callable[[Manifest, Context], Iterable[Violation | str]]
CelSource = str | Callable[[Context], str]
"""A rule at admission (admission.py): one CEL expression, true when the object passes; a
function of the stack's settings when the rule reads any (they are baked into the CEL)."""
StackCheck = Callable[[list[Manifest], Context], Iterable[tuple[int, Violation | str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    severity: Severity
    description: str
    remediation: str
    check: Callable[..., Iterable[Any]] = field(repr=False, compare=False)
    scope: Literal["object", "stack"] = "object"
    kinds: frozenset[str] | None = None
    """Object rules: the kinds the rule looks at (None: every kind)."""
    enforcement: Enforcement = "mandatory"
    settings: tuple[str, ...] = ()
    """The per-stack settings the rule reads: `environment` or PolicySpec fields. The
    CrossGuard pack gives each policy a config property for each (crossguard.py)."""
    cel: CelSource | None = field(default=None, repr=False, compare=False)
    """The same check in CEL, for the generated ValidatingAdmissionPolicy (admission.py)."""
    not_at_admission: str = ""
    """Why admission cannot judge the rule (object rules without `cel`; stack rules need every object)."""

    def admission_cel(self, context: Context) -> str | None:
        return self.cel(context) if callable(self.cel) else self.cel

    def violations(self, manifest: Manifest, context: Context) -> list[Violation]:
        """Object rules only: the violations of one manifest."""
        if self.kinds is not None and manifest.get("kind") not in self.kinds:
            return []
        return [_violation(v) for v in self.check(manifest, context)]

    def stack_violations(self, manifests: list[Manifest], context: Context) -> list[tuple[int, Violation]]:
        """Stack rules only: (index of the offending manifest, violation) pairs."""
        return [(index, _violation(v)) for index, v in self.check(manifests, context)]


def _violation(value: Violation | str) -> Violation:
    return value if isinstance(value, Violation) else Violation(value)


class RuleFamily:
    """The rules of one module, registered by decorator next to their code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rules: list[Rule] = []

    def object_rule(
        self, name: str, *, severity: Severity, description: str, remediation: str,
        kinds: Iterable[str] | None = None, enforcement: Enforcement = "mandatory", settings: tuple[str, ...] = (),
        cel: CelSource | None = None, not_at_admission: str = "",
    ) -> Callable[[ObjectCheck], Rule]:
        def register(check: ObjectCheck) -> Rule:
            rule = Rule(name, self.name, severity, description, remediation, check, "object",
                        frozenset(kinds) if kinds is not None else None, enforcement, settings, cel, not_at_admission)
            self.rules.append(rule)
            return rule
        return register

    def stack_rule(
        self, name: str, *, severity: Severity, description: str, remediation: str,
        enforcement: Enforcement = "mandatory", settings: tuple[str, ...] = (), not_at_admission: str = "",
    ) -> Callable[[StackCheck], Rule]:
        def register(check: StackCheck) -> Rule:
            rule = Rule(name, self.name, severity, description, remediation, check, "stack", None, enforcement, settings,
                        None, not_at_admission)
            self.rules.append(rule)
            return rule
        return register
