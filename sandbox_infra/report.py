"""Check reports: a table for people, JSON/YAML for machines, SARIF 2.1.0 for code-scanning
annotations, Markdown for pull-request comments, GitHub workflow commands for inline
annotations without code scanning, and JUnit XML for CI systems that show test results.
All show the same findings; a fleet's reports combine into one document per format."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import TYPE_CHECKING, Any, TypeAlias
from xml.etree import ElementTree

from .output import table, to_json, to_yaml
from .versions import project_version

if TYPE_CHECKING:  # annotations only: the command line lists FORMATS without loading the rules
    from sandbox_policy.engine import Finding, Report
    from sandbox_policy.rule import Rule

    from .sources import Located

TOOL = "sandbox-infra-policy"
TOOL_VERSION = project_version()
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
# GitHub code scanning ranks security alerts by this number (0.1-10).
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}


def _status(report: Report) -> str:
    if report.blocking:
        return f"FAILED: {len(report.blocking)} mandatory violation{'s' if len(report.blocking) != 1 else ''}"
    return "passed: no mandatory violations"


def summary(report: Report) -> str:
    return (
        f"{_status(report)}; {len(report.advisory)} advisory, {len(report.excepted)} excepted "
        f"({report.objects} objects, {len(report.rules)} rules, {report.evaluations} evaluations; "
        f"settings: {report.context.source})"
    )


def render_table(report: Report, target: str) -> str:
    rows = [(f.enforcement, f.rule.severity, f.rule.name, f.object_ref, f.message)
            for f in report.findings if not f.exception]
    # Excepted findings: one line per rule and object, naming the exception (details in the other formats).
    excepted = Counter((f.rule, f.object_ref, f.exception.source) for f in report.excepted)  # type: ignore[union-attr]
    rows += [("excepted", rule.severity, rule.name, ref, f"{count} finding{'s' if count != 1 else ''} excepted: {source}")
             for (rule, ref, source), count in excepted.items()]
    found = table(("enforcement", "severity", "rule", "object", "message"), rows, _enforcement_style) if rows else ""
    return f"policy check of {target}\n{found}{summary(report)}\n"


def _enforcement_style(row: list[str] | tuple[str, ...]) -> str:
    return {"mandatory": "red", "advisory": "yellow", "excepted": "dim"}.get(row[0], "")


def _finding_json(f: Finding, location: Located | None) -> dict[str, Any]:
    return {
        "rule": f.rule.name,
        "family": f.rule.family,
        "severity": f.rule.severity,
        "enforcement": f.enforcement,
        "blocking": f.blocking,
        "apiVersion": f.api_version,
        "kind": f.kind,
        "namespace": f.namespace or None,
        "name": f.name,
        "message": f.message,
        "remediation": f.rule.remediation,
        "location": {"file": location.uri, "line": location.line} if location else None,
        "exception": {"justification": f.exception.justification, "source": f.exception.source} if f.exception else None,
    }


def _rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name, "family": rule.family, "scope": rule.scope, "severity": rule.severity,
        "defaultEnforcement": rule.enforcement, "description": rule.description, "remediation": rule.remediation,
    }


def report_document(report: Report, target: str, locations: list[Located]) -> dict[str, Any]:
    return {
        "tool": {"name": TOOL, "version": TOOL_VERSION},
        "target": target,
        "settings": {
            "source": report.context.source,
            "environment": report.context.environment,
            **report.context.policy.model_dump(mode="json", by_alias=True),
        },
        "passed": report.passed,
        "summary": {
            "objects": report.objects,
            "rules": len(report.rules),
            "evaluations": report.evaluations,
            "mandatory": len(report.blocking),
            "advisory": len(report.advisory),
            "excepted": len(report.excepted),
            "byRule": dict(sorted(Counter(f.rule.name for f in report.findings if not f.exception).items())),
        },
        "findings": [_finding_json(f, _at(locations, f)) for f in report.findings],
        "rules": [_rule_json(r) for r in report.rules],
    }


def _at(locations: list[Located], finding: Finding) -> Located | None:
    return locations[finding.index] if finding.index < len(locations) else None


def _fingerprint(f: Finding) -> str:
    key = "\x1f".join((f.rule.name, f.kind, f.namespace, f.name, f.message))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sarif_run(report: Report, target: str, locations: list[Located]) -> dict[str, Any]:
    rule_index = {rule.name: index for index, rule in enumerate(report.rules)}
    rules = [
        {
            "id": rule.name,
            "name": "".join(part.capitalize() for part in rule.name.split("-")),
            "shortDescription": {"text": rule.description},
            "fullDescription": {"text": rule.description},
            "help": {"text": rule.remediation, "markdown": f"**Fix:** {rule.remediation}"},
            "defaultConfiguration": {"level": "error" if report.context.enforcement_of(rule) == "mandatory" else "warning"},
            "properties": {
                "tags": ["security", "kubernetes", rule.family],
                "security-severity": SECURITY_SEVERITY[rule.severity],
                "problem.severity": "error" if rule.severity in ("high", "critical") else "warning",
                "scope": rule.scope,
            },
        }
        for rule in report.rules
    ]
    results = []
    for f in report.findings:
        location = _at(locations, f)
        result: dict[str, Any] = {
            "ruleId": f.rule.name,
            "ruleIndex": rule_index[f.rule.name],
            "level": "error" if f.enforcement == "mandatory" else "warning",
            "message": {"text": f"{f.object_ref}: {f.message}"},
            "locations": [_sarif_location(f, location)],
            "partialFingerprints": {"sandboxInfraFinding/v1": _fingerprint(f)},
            "properties": {"enforcement": f.enforcement, "severity": f.rule.severity},
        }
        if f.exception:
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": f.exception.justification}]
        results.append(result)
    return {
        "tool": {"driver": {"name": TOOL, "version": TOOL_VERSION, "semanticVersion": TOOL_VERSION, "rules": rules}},
        # Code scanning keeps one alert set per category (the id up to its last '/').
        "automationDetails": {"id": f"{TOOL}/{'-'.join(target.split())}/"},
        "invocations": [{"executionSuccessful": True}],
        "results": results,
        "properties": {"target": target, "settings": report.context.source, "passed": report.passed},
    }


def _sarif_location(f: Finding, location: Located | None) -> dict[str, Any]:
    logical = [{
        "name": f.name,
        "fullyQualifiedName": f"{f.kind}/{f.namespace + '/' if f.namespace else ''}{f.name}",
        "kind": "resource",
    }]
    if location is None or location.uri is None:
        return {"logicalLocations": logical}
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": location.uri, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": location.line},
        },
        "logicalLocations": logical,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, target: str, locations: list[Located]) -> str:
    icon = ":x:" if report.blocking else (":warning:" if report.advisory else ":white_check_mark:")
    lines = [f"### {icon} Policy check of {target}: {_status(report)}", "", summary(report), ""]
    active = [f for f in report.findings if not f.exception]
    if active:
        lines += ["| Enforcement | Severity | Rule | Object | Problem | Where |", "| --- | --- | --- | --- | --- | --- |"]
        for f in active:
            location = _at(locations, f)
            where = f"`{location.uri}:{location.line}`" if location and location.uri else ""
            lines.append(
                f"| {f.enforcement} | {f.rule.severity} | `{f.rule.name}` | `{_cell(f.object_ref)}` | {_cell(f.message)} | {where} |"
            )
        lines += ["", "<details><summary>How to fix</summary>", ""]
        for name in dict.fromkeys(f.rule.name for f in active):
            rule = next(f.rule for f in active if f.rule.name == name)
            lines.append(f"- **`{name}`**: {_cell(rule.remediation)}")
        lines += ["", "</details>", ""]
    if report.excepted:
        lines += [f"<details><summary>{len(report.excepted)} excepted upstream findings</summary>", ""]
        for f in report.excepted:
            lines.append(f"- `{f.rule.name}` on `{_cell(f.object_ref)}`: {_cell(f.message)}. "
                         f"*Why:* {_cell(f.exception.justification)}")  # type: ignore[union-attr]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _escape(text: str, property_value: bool = False) -> str:
    """GitHub workflow-command escaping (a newline would end the command)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def render_github(report: Report, target: str, locations: list[Located]) -> str:
    """`::error`/`::warning` workflow commands: inline annotations on the lines to change."""
    lines = []
    for f in report.findings:
        if f.exception:
            continue
        location = _at(locations, f)
        where = f"file={_escape(location.uri, True)},line={location.line}," if location and location.uri else ""
        level = "error" if f.enforcement == "mandatory" else "warning"
        title = _escape(f"{f.rule.name} ({f.rule.severity}, {f.enforcement})", True)
        lines.append(f"::{level} {where}title={title}::{_escape(f'{f.object_ref}: {f.message} Fix: {f.rule.remediation}')}")
    lines.append(f"::notice title={_escape(f'policy check of {target}', True)}::{_escape(summary(report))}")
    return "\n".join(lines) + "\n"


def junit_suite(report: Report, target: str) -> ElementTree.Element:
    """One test suite per target, one test case per rule: mandatory findings fail it,
    advisory ones are listed in its output (they do not block, so they do not fail)."""
    suite = ElementTree.Element("testsuite", name=target, tests=str(len(report.rules)))
    failures = 0
    for rule in report.rules:
        case = ElementTree.SubElement(suite, "testcase", classname=f"{target}.{rule.family}", name=rule.name)
        found = [f for f in report.findings if f.rule.name == rule.name and not f.exception]
        mandatory = [f for f in found if f.enforcement == "mandatory"]
        if mandatory:
            failures += 1
            failure = ElementTree.SubElement(case, "failure", type="mandatory",
                                             message=f"{len(mandatory)} mandatory violation(s); fix: {rule.remediation}")
            failure.text = "\n".join(f"{f.object_ref}: {f.message}" for f in mandatory)
        advisory = [f for f in found if f.enforcement != "mandatory"]
        if advisory:
            ElementTree.SubElement(case, "system-out").text = "\n".join(
                f"advisory: {f.object_ref}: {f.message}" for f in advisory)
    suite.set("failures", str(failures))
    return suite


Checked: TypeAlias = "tuple[Report, str, list[Located]]"
FORMATS = ("table", "json", "yaml", "sarif", "markdown", "github", "junit")


def render(report: Report, target: str, locations: list[Located], fmt: str) -> str:
    return render_many([(report, target, locations)], fmt, single=True)


def render_many(results: list[Checked], fmt: str, single: bool = False) -> str:
    """One report for one target, or a fleet's reports as one document (SARIF: one run per
    stack; JSON/YAML: a list; JUnit: one suite per stack)."""
    if fmt in ("json", "yaml"):
        documents = [report_document(*result) for result in results]
        data = documents[0] if single else documents
        return to_yaml(data) if fmt == "yaml" else to_json(data)
    if fmt == "sarif":
        return to_json({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [sarif_run(*result) for result in results]})
    if fmt == "junit":
        suites = ElementTree.Element("testsuites", name=TOOL)
        suites.extend(junit_suite(report, target) for report, target, _ in results)
        ElementTree.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
    if fmt == "table":
        return "\n".join(render_table(report, target) for report, target, _ in results)
    renderer = {"markdown": render_markdown, "github": render_github}[fmt]
    return "\n".join(renderer(*result) for result in results)
