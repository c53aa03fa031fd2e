"""The bad-input corpus (tests/bad_inputs/cases.py) against the command line and the
Pulumi program: exit 2 with the expected message, no traceback, no planted secret."""

from __future__ import annotations

import io
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from components.errors import ConfigError
from components.inputs import load_yaml
from components.specs import loader
from sandbox_infra.cli import main

from .bad_inputs.cases import BASE, CASES, EXPLAIN, RENDER, SECRET, Case
from .pulumi_harness import run_under_mocks

ROOT = Path(__file__).resolve().parents[1]

# A stack-config case is also fed to these commands: each reads the stack before doing anything else.
STACK_COMMANDS = [RENDER, EXPLAIN, ["check", "--stack", "dev"],
                  ["diff", "--stack", "dev", "--base", "HEAD"], ["fleet", "render"]]


def expected(case: Case) -> tuple[str, ...]:
    return case.expect if isinstance(case.expect, tuple) else (case.expect,)


def materialise(case: Case, root: Path) -> None:
    for relative, content in {**BASE, **case.files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("@symlink:"):
            path.symlink_to(content.removeprefix("@symlink:").format(root=root))
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def run_cli(args: list[str], root: Path, stdin: bytes, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    args = [arg.format(root=root) for arg in args]
    code = main(args if args[0] == "--stacks-dir" else ["--stacks-dir", str(root / "stacks"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_base_project_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Each case differs from this base by the one bad input it names."""
    materialise(Case("base", [], ""), tmp_path)
    code, out, err = run_cli(RENDER, tmp_path, b"", monkeypatch, capsys)
    assert code == 0, err
    assert "kind: SandboxWarmPool" in out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_named_and_exits_2(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    materialise(case, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    commands = STACK_COMMANDS if case.args in (RENDER, EXPLAIN) else [case.args]
    for args in commands:
        code, out, err = run_cli(args, tmp_path, case.stdin, monkeypatch, capsys)
        assert code == 2, f"{args}: exit {code}\n{err}"
        assert all(part.format(root=tmp_path) in err for part in expected(case)), f"{args}: {err}"
        assert err.startswith("error: ") and "Traceback" not in err
        assert SECRET not in out + err
    # Bad input never costs the user a file.
    assert {p: p.read_bytes() for p in before if p.is_file()} == before


def _engine_config(case: Case) -> dict[str, str] | None:
    """The config the engine would pass for a case's stack file, or None where the engine
    itself would refuse the file (not YAML, no `config:`): the program never runs then."""
    content = {**BASE, **case.files}["stacks/Pulumi.dev.yaml"]
    try:
        document = load_yaml(content.decode() if isinstance(content, bytes) else content, "stack file")
    except (ConfigError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        return None
    return {key: json.dumps(value) for key, value in document["config"].items()}


ENGINE_CASES = [c for c in CASES if c.args in (RENDER, EXPLAIN) and _engine_config(c) is not None]


@pytest.mark.usefixtures("upstream")
@pytest.mark.parametrize("case", ENGINE_CASES, ids=[c.id for c in ENGINE_CASES])
def test_the_pulumi_program_raises_one_run_error(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the engine: the stack file's config arrives from the engine, the layers are read
    from disk; either way the program ends in a single RunError naming the key."""
    materialise(case, tmp_path)
    config = _engine_config(case)
    assert config is not None
    monkeypatch.setattr(loader, "STACKS_DIR", tmp_path / "stacks")
    pulumi.runtime.set_all_config(config)
    try:
        with pytest.raises(pulumi.RunError) as caught:
            run_under_mocks(lambda: runpy.run_path(str(ROOT / "__main__.py")), stack="dev")
    finally:
        pulumi.runtime.set_all_config({})
    message = str(caught.value)
    assert all(part in message for part in expected(case)), message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained traceback
    assert SECRET not in message


@pytest.mark.parametrize("case_id", ["deep-nesting", "alias-bomb-in-stack", "check-empty-stdin", "stack-not-utf8"])
def test_the_real_command_exits_2(case_id: str, tmp_path: Path) -> None:
    """A few cases as real processes: the exit status the shell sees, and no crash of the
    YAML parser's C code (which an in-process test would not survive either)."""
    case = next(c for c in CASES if c.id == case_id)
    materialise(case, tmp_path)
    args = [arg.format(root=tmp_path) for arg in case.args]
    result = subprocess.run([sys.executable, "-m", "sandbox_infra", "--stacks-dir", str(tmp_path / "stacks"), *args],
                            input=case.stdin, capture_output=True, cwd=ROOT, timeout=60, check=False)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert all(part in err for part in expected(case)) and "Traceback" not in err
