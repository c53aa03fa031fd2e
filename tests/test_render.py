"""The main job: `python -m sandbox_infra render --stack NAME`, offline and deterministic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox_infra.cli import main

from .conftest import SHIPPED_STACKS

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox_infra", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.usefixtures("upstream")
def test_render_is_byte_for_byte_deterministic_across_processes(tmp_path: Path) -> None:
    # A different hash seed per process would expose any set/dict ordering leak.
    first = _cli("render", "--stack", "dev", env={"PYTHONHASHSEED": "1", "XDG_CACHE_HOME": str(tmp_path)})
    second = _cli("render", "--stack", "dev", env={"PYTHONHASHSEED": "2", "XDG_CACHE_HOME": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    documents = list(yaml.load_all(first.stdout, Loader=yaml.CSafeLoader))
    assert len(documents) > 10
    assert f"rendered {len(documents)} objects for stack 'dev'" in first.stderr


@pytest.mark.usefixtures("upstream")
@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH (the README's commands need it)")
def test_make_render_writes_only_yaml_to_stdout() -> None:
    """`make render > dev.yaml` must give a valid YAML stream: make echoes no command line and
    setup (when requirements changed) talks on stderr. MAKEFLAGS from a calling make (which would
    add "Entering directory" lines) are dropped, as in a user's shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    made = subprocess.run(["make", "render"], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout == _cli("render", "--stack", "dev").stdout


@pytest.mark.usefixtures("upstream")
@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_render_out_dir_writes_one_file_per_object(stack: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["render", "--stack", stack]) == 0
    streamed = list(yaml.load_all(capsys.readouterr().out, Loader=yaml.CSafeLoader))
    out = tmp_path / "out"
    assert main(["render", "--stack", stack, "--out", str(out)]) == 0
    files = sorted(out.iterdir())
    assert [yaml.load(f.read_text(), Loader=yaml.CSafeLoader) for f in files] == streamed
    assert files[0].name.startswith("000-namespace-")


def test_render_refuses_a_non_empty_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    assert main(["render", "--stack", "dev", "--out", str(tmp_path)]) == 2
    assert "directory is not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_bad_stack_config_is_one_message_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  sandbox-infra:cluster:\n    name: broken\n    environment: qa\n"
    )
    result = _cli("--stacks-dir", str(tmp_path), "render", "--stack", "broken")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "sandbox-infra:cluster.environment = 'qa': input should be 'dev', 'staging' or 'prod'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_stack_lists_the_shipped_ones() -> None:
    result = _cli("render", "--stack", "qa")
    assert result.returncode == 2
    assert "no stack named 'qa'" in result.stderr and "dev, prod, prod-us, staging" in result.stderr


def test_missing_mirror_without_network_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("UPSTREAM_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", unreachable)
    assert main(["render", "--stack", "dev"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "download failed (network unreachable); set UPSTREAM_DIR to a local mirror" in captured.err
