"""The command line as a user drives it: version, completion, typos, global options anywhere,
the stack a command falls back to, pipes closed early, colour, output files, and the
JSON documents of every command (their shapes and their casing, docs/cli.md)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml

from sandbox_infra.cli import main
from sandbox_infra.stacks import workspace_selection

from .conftest import SHIPPED_STACKS
from .e2e.toolchain import binary

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandbox_infra", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, check=False, **kwargs)


# --- version, help, completion ------------------------------------------------------------


def test_version_names_the_pins() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert lines[0] == f"sandbox-infra {version}"
    assert "agent-sandbox         v0.5.6 (default; supported: v0.4.6, v0.5.6)" in lines
    assert "KubeVirt              v1.9.0" in lines
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line
                and not line.startswith("#"))
    assert f"Pulumi SDK            {pins['pulumi'].split()[0]}" in lines
    assert any(line.startswith(f"pulumi-kubernetes     SDK {pins['pulumi-kubernetes'].split()[0]}, provider plugin 4.0.0-")
               for line in lines)


def test_help_names_the_command_not_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fleet", "up", "--help")
    assert code == 0
    assert out.startswith("Usage: sandbox-infra fleet up [OPTIONS]")
    for option in ("--yes", "--stack", "--wave", "--refresh", "--parallel", "--output", "--stacks-dir", "--no-color"):
        assert option in out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = cli("completion", shell)
    assert result.returncode == 0 and "_SANDBOX_INFRA_COMPLETE" in result.stdout
    assert {"bash": "complete -o nosort -F", "zsh": "#compdef sandbox-infra", "fish": "complete --no-files"}[shell] \
        in result.stdout


@pytest.mark.parametrize(("words", "expected"), [
    ("sandbox-infra ren", ["render"]),
    ("sandbox-infra fleet ", ["affected", "check", "diff", "preview", "render", "status", "up", "waves"]),
    ("sandbox-infra render -s prod", ["prod", "prod-us"]),
    ("sandbox-infra check --stack ", sorted(SHIPPED_STACKS)),
    ("sandbox-infra fleet up --wave ", ["canary", "staging", "production"]),
    ("sandbox-infra check -o ", ["table", "json", "yaml", "sarif", "markdown", "github", "junit"]),
])
def test_completion_of_commands_stacks_waves_and_formats(words: str, expected: list[str], monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    parts = words.split()
    cword = len(parts) if words.endswith(" ") else len(parts) - 1
    monkeypatch.setenv("_SANDBOX_INFRA_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(cword))
    with pytest.raises(SystemExit):
        main([])
    completions = [line.split(",", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert completions == expected


# --- typos and usage ----------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["rendr"], "unknown command 'rendr' for 'sandbox-infra' (did you mean 'render'?)"),
    (["fleet", "stauts"], "unknown command 'stauts' for 'sandbox-infra fleet' (did you mean 'status'?)"),
    (["render", "-s", "prd"], "--stack: no stack named 'prd' in"),
    (["render", "-s", "prd"], "(did you mean 'prod'?); allowed: dev, prod, prod-us, staging"),
    (["check", "-s", "prod", "--outptu", "json"], "No such option '--outptu'. (Did you mean one of: '--output', '--output-file'?)"),
    (["render", "-s", "dev", "-o", "table"], "'table' is not one of 'yaml', 'json'"),
    (["diff", "-s", "dev"], "Missing option '--base'"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_old_option_names_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "--stack", "dev", "--base", "HEAD", "--format", "text")
    assert code == 0 and out.startswith("stack dev vs HEAD: ")
    code, out, _ = run(capsys, "config", "explain", "--stack", "dev", "--format", "json")
    assert code == 0 and json.loads(out)


# --- options accepted anywhere, and the stack a command means ------------------------------


@pytest.mark.parametrize("argv", [
    ["--stacks-dir", "{missing}", "render", "-s", "dev"],
    ["render", "--stacks-dir", "{missing}", "-s", "dev"],
    ["render", "-s", "dev", "--stacks-dir", "{missing}"],
    ["config", "--stacks-dir", "{missing}", "explain", "-s", "dev"],
    ["fleet", "waves", "--stacks-dir", "{missing}"],
])
def test_global_options_anywhere_on_the_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, *[arg.format(missing=missing) for arg in argv])
    assert code == 2 and str(missing) in err


def test_fleet_file_option_before_or_after_the_fleet_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("waves:\n  - {name: only, stacks: [prod]}\n")
    for argv in (["fleet", "--fleet", str(fleet), "waves", "-o", "json"], ["fleet", "waves", "-o", "json", "--fleet", str(fleet)]):
        code, out, _ = run(capsys, *argv)
        assert code == 0 and json.loads(out) == [{"name": "only", "stacks": ["prod"], "maxParallel": 1}]


def _rendered_stack(err: str) -> str:
    return re.search(r"for stack '([^']+)'", err).group(1)


def test_stack_falls_back_to_pulumi_stack(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PULUMI_STACK", "prod-us")
    code, _, err = run(capsys, "render")
    assert code == 0 and _rendered_stack(err) == "prod-us"
    code, _, err = run(capsys, "render", "-s", "staging")  # the flag wins
    assert code == 0 and _rendered_stack(err) == "staging"
    monkeypatch.setenv("PULUMI_STACK", "prd")
    code, _, err = run(capsys, "render")
    assert code == 2 and "PULUMI_STACK: no stack named 'prd'" in err and "did you mean 'prod'?" in err


def _select_in_workspace(home: Path, project: Path, document: dict) -> None:
    """What `pulumi stack select` writes: one workspace file per project, named after the
    project and the sha1 of its Pulumi.yaml's path."""
    digest = hashlib.sha1(str(project / "Pulumi.yaml").encode()).hexdigest()
    path = home / "workspaces" / f"sandbox-infra-{digest}-workspace.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def test_stack_falls_back_to_the_selected_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path))
    (tmp_path / "credentials.json").write_text(json.dumps({"current": "file:///state"}))
    _select_in_workspace(tmp_path, ROOT, {"stacks": {"https://api.pulumi.com": "org/sandbox-infra/prod",
                                                     "file:///state": "organization/sandbox-infra/staging"}})
    code, _, err = run(capsys, "render")
    assert code == 0 and _rendered_stack(err) == "staging"  # the current backend's selection
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    assert workspace_selection(ROOT) == "prod"
    _select_in_workspace(tmp_path, ROOT, {"stack": "dev"})  # older CLIs: one selection
    assert workspace_selection(ROOT) == "dev"
    _select_in_workspace(tmp_path, ROOT, {})
    code, _, err = run(capsys, "render")
    assert code == 2 and "no stack given: pass -s/--stack NAME, set PULUMI_STACK, or `pulumi stack select` one" in err


@pytest.mark.skipif(not binary("pulumi").is_file(), reason="no Pulumi CLI built by tools/build.sh (make toolchain)")
def test_the_selection_is_read_where_the_pulumi_cli_writes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project)
    shutil.copytree(ROOT / "stacks", project / "stacks")
    env = {**os.environ, "PULUMI_HOME": str(tmp_path / "home"), "PULUMI_CONFIG_PASSPHRASE": "sandbox-infra-dev",
           "PULUMI_SKIP_UPDATE_CHECK": "true"}
    monkeypatch.setenv("PULUMI_HOME", env["PULUMI_HOME"])
    pulumi = str(binary("pulumi"))
    (tmp_path / "state").mkdir()
    for args in (["login", f"file://{tmp_path / 'state'}"], ["stack", "init", "prod-us"], ["stack", "init", "dev"],
                 ["stack", "select", "prod-us"]):
        subprocess.run([pulumi, *args, "--non-interactive"], cwd=project, env=env, check=True, capture_output=True,
                       timeout=120)
    assert workspace_selection(project) == "prod-us"


# --- pipes, colour, files --------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["config", "explain", "-s", "prod", "-o", "json"], ["fleet", "render"], ["render", "-s", "dev"]])
def test_a_pipe_closed_early_ends_quietly(argv: list[str]) -> None:
    # As `| head` does it, but deterministically: the reader is gone before the first write.
    process = subprocess.Popen([sys.executable, "-m", "sandbox_infra", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141, err  # what a shell shows for a writer ended by SIGPIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err and "error:" not in err


def _on_a_terminal(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run with stdout and stderr on a pseudo-terminal, as a person sees it."""
    primary, secondary = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")} | {"TERM": "xterm-256color"}
    process = subprocess.Popen([sys.executable, "-m", "sandbox_infra", *argv], cwd=ROOT, stdout=secondary,
                               stderr=secondary, stdin=subprocess.DEVNULL, env=environment | (env or {}))
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(primary)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color() -> None:
    assert ANSI.search(_on_a_terminal("fleet", "waves"))
    plain = _on_a_terminal("fleet", "waves", env={"NO_COLOR": "1"})
    assert not ANSI.search(plain) and "production" in plain
    plain = _on_a_terminal("fleet", "waves", "--no-color")
    assert not ANSI.search(plain) and "production" in plain


def test_no_colour_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "-s", "prod")
    assert code == 0 and not ANSI.search(out + err)


def test_one_check_run_writes_several_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sarif = tmp_path / "reports" / "prod.sarif"
    code, out, err = run(capsys, "check", "-s", "prod", "-o", "sarif", "--output-file", str(sarif), "-o", "markdown")
    assert code == 0
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert out.startswith("### :white_check_mark: Policy check of stack prod")
    assert f"wrote {sarif} (sarif)" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["-o", "json", "--output-file", "a.json", "--output-file", "b.json"],
     "--output-file b.json: has no -o/--output format of its own"),
    (["-o", "json", "-o", "sarif"], "-o/--output: 2 formats would go to stdout (json, sarif)"),
    (["-o", "json", "--output-file", "{tmp}"], "Invalid value for '--output-file': File '{tmp}' is a directory"),
])
def test_output_files_are_checked_first(argv: list[str], message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "-s", "prod", *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and out == "" and message.format(tmp=tmp_path) in err


VIOLATING = """\
apiVersion: v1
kind: Pod
metadata: {name: root, namespace: agents}
spec:
  containers:
    - name: main
      image: ghcr.io/example/x:1
      securityContext: {privileged: true}
"""


def test_github_annotations_point_at_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(VIOLATING)
    code, out, _ = run(capsys, "check", "-f", str(manifest), "-o", "github")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert errors and all(f"file={manifest.as_posix().replace(':', '%3A')},line=1,title=" in line for line in errors)
    assert any("privileged" in line for line in errors)
    assert out.splitlines()[-1].startswith("::notice title=policy check of ")


def test_junit_fails_one_case_per_violated_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(VIOLATING)
    code, out, _ = run(capsys, "check", "-f", str(manifest), "-o", "junit")
    assert code == 1
    suites = ElementTree.fromstring(out)
    suite = suites.find("testsuite")
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert "pod-security-privileged" in failed or any("privileged" in name for name in failed)
    assert int(suite.get("failures")) == len(failed) and int(suite.get("tests")) == len(list(suite.iter("testcase")))
    code, out, _ = run(capsys, "fleet", "check", "-o", "junit")
    assert code == 0
    assert [s.get("name") for s in ElementTree.fromstring(out).iter("testsuite")] == \
        [f"stack {s}" for s in ["dev", "staging", "prod", "prod-us"]]


# --- JSON documents --------------------------------------------------------------------------

STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
NULLABLE_STRING = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False,
            **extra}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


OUTCOMES = _object({"action": {"enum": ["preview", "up"]}, "succeeded": BOOLEAN, "stacks": _list_of(_object({
    "stack": STRING, "wave": STRING, "result": {"enum": ["succeeded", "failed", "blocked", "skipped"]},
    "changes": {"type": "object", "additionalProperties": INTEGER}, "durationSeconds": {"type": "number"},
    "mandatoryViolations": INTEGER, "message": STRING}))})
DIFF = _object({"stack": STRING, "base": STRING, "added": _list_of(STRING), "removed": _list_of(STRING),
                "changed": _list_of(_object({"object": STRING, "replaced": BOOLEAN, "fields": _list_of(
                    _object({"path": STRING, "before": {}, "after": {}}))})),
                "warnings": _list_of(STRING), "policy": _object({"introduced": _list_of(STRING), "fixed": _list_of(STRING)})})
FINDING = _object({key: {} for key in ("rule", "family", "severity", "enforcement", "blocking", "apiVersion", "kind",
                                       "namespace", "name", "message", "remediation", "location", "exception")})
CHECK = _object({"tool": _object({"name": STRING, "version": STRING}), "target": STRING, "settings": {"type": "object"},
                 "passed": BOOLEAN, "summary": {"type": "object"}, "findings": _list_of(FINDING),
                 "rules": _list_of({"type": "object"})})
SCHEMAS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "render": (["render", "-s", "dev", "-o", "json"],
               _object({"apiVersion": {"const": "v1"}, "kind": {"const": "List"}, "items": _list_of({"type": "object"})})),
    "check": (["check", "-s", "prod", "-o", "json"], CHECK),
    "fleet check": (["fleet", "check", "-o", "json"], _list_of(CHECK)),
    "diff": (["diff", "-s", "dev", "--base", "HEAD", "-o", "json"], DIFF),
    "fleet diff": (["fleet", "diff", "--base", "HEAD", "-o", "json"], _list_of(DIFF)),
    "fleet affected": (["fleet", "affected", "--base", "HEAD", "-o", "json"], _object({
        "base": STRING, "affected": _list_of(STRING), "stacks": _list_of(_object({
            "stack": STRING, "wave": STRING, "affected": BOOLEAN, "added": INTEGER, "changed": INTEGER,
            "removed": INTEGER, "policyIntroduced": INTEGER, "policyFixed": INTEGER}))})),
    "config explain": (["config", "explain", "-s", "prod", "-o", "json"],
                       _list_of(_object({"key": STRING, "value": {}, "layer": STRING}))),
    "size": (["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "-o", "json"], _object({
        "replicas": INTEGER, "hitRatio": {"type": "number"}, "idleReplicas": {"type": "number"},
        "idlePodHoursPerDay": {"type": "number"}, "alerts": _object({
            "sloWindow": STRING, "missBudget": {"type": "number"}, "burnRate": _list_of(_object({
                "severity": {"enum": ["page", "ticket"]}, "longWindow": STRING, "shortWindow": STRING,
                "burnRate": {"type": "number"}, "missRatio": {"type": "number"}, "minClaims": INTEGER})),
            "claimRatePerMinute": {"type": ["number", "null"]}, "coldReadySeconds": {"type": "number"}})})),
    "doctor": (["doctor", "-s", "dev", "--offline", "-o", "json"], _object({"passed": BOOLEAN, "checks": _list_of(_object({
        "name": STRING, "status": {"enum": ["ok", "warn", "fail", "skip"]}, "detail": STRING, "fix": STRING}))})),
    "fleet waves": (["fleet", "waves", "-o", "json"], _list_of(_object({"name": STRING, "stacks": _list_of(STRING),
                                                                          "maxParallel": INTEGER}))),
    "fleet status": (["fleet", "status", "-o", "json"], _list_of(_object({
        "stack": STRING, "wave": STRING, "environment": STRING, "agentSandboxVersion": STRING,
        "warmPools": _list_of(_object({"name": STRING, "replicas": INTEGER, "autoscaler": {
            "oneOf": [{"type": "null"}, _object({"engine": STRING, "minReplicas": INTEGER, "maxReplicas": INTEGER})]}})),
        "lastUpdate": NULLABLE_STRING}))),
}
# Maps whose keys are data (names, Kubernetes fields, config keys), not this CLI's own keys.
DATA_MAPS = {"items", "value", "before", "after", "changes", "byRule", "settings", "location", "exception"}


def camel_case_problems(document: Any, path: str = "") -> list[str]:
    if isinstance(document, list):
        return [p for i, item in enumerate(document) for p in camel_case_problems(item, f"{path}[{i}]")]
    if not isinstance(document, dict):
        return []
    problems = [f"{path}.{key}" for key in document if not re.fullmatch(r"[a-z][a-zA-Z0-9]*", key)]
    return problems + [p for key, value in document.items() if key not in DATA_MAPS
                       for p in camel_case_problems(value, f"{path}.{key}")]


@pytest.mark.usefixtures("upstream")
@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_documents_have_their_documented_shape_in_camel_case(name: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv, schema = SCHEMAS[name]
    if name == "fleet status":
        monkeypatch.setenv("PATH", "/nonexistent")  # the config columns, without asking an engine
    code = main(argv)
    out = capsys.readouterr().out
    assert code in (0, 2 if name == "fleet status" else 0)
    document = json.loads(out)
    jsonschema.validate(document, schema)
    assert camel_case_problems(document) == []
    # YAML carries the same document (render: as the stream of its items).
    assert main([*argv[:-1], "yaml"]) == code
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents == (document["items"] if name == "render" else [document])


def test_the_casing_check_can_fail() -> None:
    assert camel_case_problems({"hit_ratio": 1, "stacks": [{"max_parallel": 2}], "changes": {"a_b": 1}}) == \
        [".hit_ratio", ".stacks[0].max_parallel"]


def test_fleet_run_outcomes_have_their_shape(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from .test_fleet import _Recording

    monkeypatch.setattr("sandbox_infra.fleet.AutomationOperations", _Recording)
    for action in ("preview", "up"):
        assert main(["fleet", action, "--yes", "-o", "json"] if action == "up" else ["fleet", action, "-o", "json"]) == 0
        document = json.loads(capsys.readouterr().out)
        jsonschema.validate(document, OUTCOMES)
        assert camel_case_problems(document) == [] and document["action"] == action


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_policy_config_is_the_pack_config_of_the_stack(stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox_policy.crossguard import pack_config

    from components.specs.loader import load_stack

    expected = pack_config(load_stack(stack).policy_context(f"stack {stack}"))
    code, out, _ = run(capsys, "policy-config", "-s", stack)
    assert code == 0 and json.loads(out) == expected
    target = tmp_path / f"{stack}.json"
    code, out, _ = run(capsys, "policy-config", "-s", stack, "-o", "yaml", "--output-file", str(target))
    assert code == 0 and out == "" and yaml.safe_load(target.read_text()) == expected


def test_progress_and_colour_only_for_a_terminal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Long enough (about a second) for the bar to be drawn at least once.
    seen = _on_a_terminal("size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "--simulate", "500000",
                          "--no-color")
    assert "simulating 10 replicas" in seen and not ANSI.search(seen)
    code, _, err = run(capsys, "size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "--simulate", "30000")
    assert code == 0 and err == ""
    # A table bound for a file is never coloured, even from a terminal.
    target = tmp_path / "waves.txt"
    assert f"wrote {target}" in _on_a_terminal("fleet", "waves", "--output-file", str(target))
    assert target.read_text().startswith("WAVE") and not ANSI.search(target.read_text())


# --- start-up: what each offline command loads ------------------------------------------------

_IMPORT_PROBE = """
import contextlib, io, json, os, sys
from sandbox_infra.cli import main
HEAVY = ("pulumi", "pulumi_kubernetes", "pulumi_policy", "grpc", "kubernetes", "matplotlib")
loaded, codes = {}, {}
for argv in json.loads(sys.argv[1]):
    if argv[:1] == ["complete"]:
        os.environ.update({"_SANDBOX_INFRA_COMPLETE": "bash_complete", "COMP_WORDS": argv[1], "COMP_CWORD": "2"})
        argv = []
    key = " ".join(argv) or "completion"
    codes[key] = "SystemExit"
    sink = io.TextIOWrapper(io.BytesIO())  # completion writes bytes to stdout's buffer
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        codes[key] = main(argv)
    os.environ.pop("_SANDBOX_INFRA_COMPLETE", None)
    loaded[key] = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY and "." not in m)
print(json.dumps({"loaded": loaded, "codes": codes}))
"""


def test_offline_commands_never_import_the_pulumi_sdks(tmp_path: Path) -> None:
    """`--version` and completion (which the shell runs on every Tab), render, check, config,
    size and diff work without a cluster: they must not pay for, or depend on, the Pulumi SDKs.
    One interpreter runs them in turn, so the first command to load one is the one named."""
    commands = [["--version"], ["complete", "sandbox-infra render -s "], ["render", "-s", "dev"],
                ["check", "-s", "dev"], ["config", "explain", "-s", "dev"], ["size", "--rate", "30/min", "--ready", "8s",
                "--target", "0.99"], ["diff", "-s", "dev", "--base", "HEAD"]]
    result = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, json.dumps(commands)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    loaded, codes = json.loads(result.stdout).values()
    assert codes == {**dict.fromkeys(loaded, 0), "completion": "SystemExit"}  # each command really ran
    assert list(loaded) == ["--version", "completion", *(" ".join(c) for c in commands[2:])]
    assert {command: modules for command, modules in loaded.items() if modules} == {}


def test_the_import_probe_sees_an_sdk_import() -> None:
    """The guard above can fail: `doctor` loads the Pulumi SDKs, and the probe sees it."""
    result = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, json.dumps([["doctor", "-s", "dev", "--offline"]])],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "pulumi" in json.loads(result.stdout)["loaded"]["doctor -s dev --offline"]
