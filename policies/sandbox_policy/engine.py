"""Run rules over a list of manifests and collect findings (the offline `check`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import PolicyInputError
from .exceptions import PolicyException, exception_for
from .rule import Context, Enforcement, Manifest, Rule, Violation
from .workloads import as_dict


@dataclass(frozen=True)
class Finding:
    rule: Rule
    enforcement: Enforcement
    index: int
    """Position of the offending object in the checked list."""
    manifest: Manifest = field(repr=False, compare=False)
    message: str
    subject: str = ""
    exception: PolicyException | None = None

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.manifest.get("apiVersion", ""))

    @property
    def namespace(self) -> str:
        return str(as_dict(self.manifest.get("metadata")).get("namespace") or "")

    @property
    def name(self) -> str:
        return str(as_dict(self.manifest.get("metadata")).get("name") or "")

    @property
    def object_ref(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    @property
    def blocking(self) -> bool:
        return self.enforcement == "mandatory" and self.exception is None


@dataclass
class Report:
    context: Context
    rules: Sequence[Rule]
    objects: int
    evaluations: int
    findings: list[Finding]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def advisory(self) -> list[Finding]:
        return [f for f in self.findings if f.exception is None and f.enforcement == "advisory"]

    @property
    def excepted(self) -> list[Finding]:
        return [f for f in self.findings if f.exception is not None]

    @property
    def passed(self) -> bool:
        return not self.blocking


def _finding(rule: Rule, context: Context, index: int, manifest: Manifest, violation: Violation) -> Finding:
    return Finding(rule, context.enforcement_of(rule), index, manifest, violation.message, violation.subject,
                   exception_for(rule.name, manifest, violation))


@contextmanager
def _unreadable(rule: Rule, index: int | None, manifest: Manifest | None) -> Iterator[None]:
    """A rule that cannot read an object (a list where Kubernetes has a string, ...) must
    not let it pass: the object is reported as bad input, which fails the check."""
    try:
        yield
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        if manifest is None:
            where = "the checked objects"
        else:
            meta = as_dict(manifest.get("metadata"))
            name = f"{meta.get('namespace') or ''}{'/' if meta.get('namespace') else ''}{meta.get('name') or ''}"
            where = f"object {index + 1} ({manifest.get('kind')} {name})" if index is not None else "an object"
        raise PolicyInputError(f"rule {rule.name} cannot read {where}: a field has a type Kubernetes would reject "
                          "(for example a list or mapping where a string belongs); fix the object") from None


def evaluate(manifests: Sequence[Manifest], context: Context, rules: Iterable[Rule]) -> Report:
    """Every finding of `rules` over `manifests` (mappings; Finding.index points into them)."""
    rules = tuple(rules)
    objects = list(manifests)
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    every_kind = [r for r in rules if r.scope == "object" and r.kinds is None]
    for rule in rules:
        if rule.scope == "object" and rule.kinds is not None:
            for kind in rule.kinds:
                by_kind[kind].append(rule)
    findings: list[Finding] = []
    evaluations = 0
    for index, manifest in enumerate(objects):
        for rule in (*by_kind.get(str(manifest.get("kind")), ()), *every_kind):
            evaluations += 1
            with _unreadable(rule, index, manifest):
                findings.extend(_finding(rule, context, index, manifest, v) for v in rule.violations(manifest, context))
    for rule in rules:
        if rule.scope == "stack":
            evaluations += len(objects)
            with _unreadable(rule, None, None):
                findings.extend(_finding(rule, context, i, objects[i], v) for i, v in rule.stack_violations(objects, context))
    findings.sort(key=lambda f: (not f.blocking, f.exception is not None, f.index, f.rule.name, f.message))
    return Report(context, rules, len(objects), evaluations, findings)
