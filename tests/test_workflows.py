"""The GitHub workflows pass actionlint (built from its Go module by tools/build-actionlint.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTIONLINT = ROOT / "tools" / "bin" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))

needs_actionlint = pytest.mark.skipif(
    not ACTIONLINT.is_file(), reason="actionlint not built: run tools/build-actionlint.sh (.ci/run does)"
)


@needs_actionlint
def test_workflows_pass_actionlint() -> None:
    result = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.event.no_such_context.x }\n")
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(broken)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0


def test_production_needs_approval_and_runs_last() -> None:
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yaml").read_text())
    jobs = deploy["jobs"]
    assert jobs["staging"]["needs"] == "dev" and jobs["production"]["needs"] == "staging"
    assert jobs["production"]["with"]["environment"] == "production"


def test_pull_requests_fail_on_mandatory_violations() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yaml").read_text())
    steps = workflow["jobs"]["offline"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    assert "Fail on mandatory policy violations" in names
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
