"""The GitHub workflows pass actionlint (built from its Go module by tools/build-actionlint.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox_infra.cli import main
from sandbox_infra.fleet import FleetSpec, WaveSpec, load_fleet

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


def _deploy() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yaml").read_text())


def disagreements(fleet: FleetSpec, deploy: dict) -> list[str]:
    """How deploy.yaml's wave jobs could roll out differently from the fleet file: each wave
    one job of its name, chained in the file's order, taking its stacks and parallelism
    from the `waves` job (which prints the fleet file's waves)."""
    jobs = deploy["jobs"]
    problems = []
    command = " ".join(step.get("run", "") for step in jobs["waves"]["steps"])
    if "sandbox-infra fleet waves -o github-matrix" not in command:
        problems.append("the waves job does not read the fleet file")
    wave_jobs = {name: job for name, job in jobs.items() if job.get("uses") == "./.github/workflows/pulumi-up.yaml"}
    names = [wave.name for wave in fleet.waves]
    if sorted(wave_jobs) != sorted(names):
        problems.append(f"wave jobs {sorted(wave_jobs)} are not the fleet's waves {sorted(names)}")
    for index, name in enumerate(names):
        job = wave_jobs.get(name)
        if job is None:
            continue
        needs = job.get("needs")
        expected_needs = "waves" if index == 0 else ["waves", names[index - 1]]
        if needs != expected_needs:
            problems.append(f"{name}: needs {needs!r}, expected {expected_needs!r} (the fleet file's order)")
        source = f"fromJSON(needs.waves.outputs.waves).{name}"
        if job["with"].get("stacks") != f"${{{{ toJSON({source}.stacks) }}}}":
            problems.append(f"{name}: stacks are not taken from the fleet file")
        if job["with"].get("max-parallel") != f"${{{{ {source}.maxParallel }}}}":
            problems.append(f"{name}: max-parallel is not taken from the fleet file")
    return problems


def test_deploy_waves_follow_the_fleet_file() -> None:
    assert disagreements(load_fleet(), _deploy()) == []


@pytest.mark.parametrize("change", ["add a wave", "reorder waves", "rename a wave"])
def test_a_fleet_file_change_the_workflow_misses_is_caught(change: str) -> None:
    waves = list(load_fleet().waves)
    if change == "add a wave":
        waves.append(WaveSpec(name="prod-asia", stacks=["prod-us"]))
    elif change == "reorder waves":
        waves[0], waves[1] = waves[1], waves[0]
    else:
        waves[0] = waves[0].model_copy(update={"name": "canaries"})
    assert disagreements(FleetSpec(waves=waves), _deploy())


def test_the_waves_step_prints_each_wave_s_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "waves", "-o", "github-matrix"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one line: the value of a GITHUB_OUTPUT entry"
    assert json.loads(out) == {w.name: {"stacks": w.stacks, "maxParallel": w.max_parallel} for w in load_fleet().waves}


def test_production_needs_approval_and_runs_last() -> None:
    jobs = _deploy()["jobs"]
    assert jobs["production"]["with"]["environment"] == "production"
    assert jobs["production"]["needs"][-1] == load_fleet().waves[-2].name


def test_pull_requests_fail_on_mandatory_violations() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yaml").read_text())
    steps = workflow["jobs"]["offline"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    assert "Fail on mandatory policy violations" in names
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
