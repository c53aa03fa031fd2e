"""Offline diff on real git refs of a temporary repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox_infra.cli import main
from sandbox_infra.diff import REDACTED, diff_manifests

ROOT = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory, upstream: Path) -> Path:
    """A git repository holding this project's code and stacks, one commit tagged `base`."""
    repo = tmp_path_factory.mktemp("base") / "repo"
    for package in ("components", "sandbox_infra", "policies"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    shutil.copytree(ROOT / "stacks", repo / "stacks")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    _git(repo, "tag", "base")
    return repo


@pytest.fixture
def repo(base_repo: Path, tmp_path: Path) -> Path:
    """A clone of the base repository for one test to edit: the same `base` commit every time,
    so the base renders once per process (`diff` caches a commit's render by its id)."""
    subprocess.run(["git", "clone", "-q", str(base_repo), str(tmp_path / "repo")], check=True, capture_output=True)
    return tmp_path / "repo"


def _edit_stack(repo: Path, edit) -> None:
    path = repo / "stacks" / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    edit(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _diff(repo: Path, capsys: pytest.CaptureFixture, fmt: str = "json") -> dict | str:
    code = main(["--stacks-dir", str(repo / "stacks"), "diff", "--stack", "dev", "--base", "base", "--format", fmt])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out) if fmt == "json" else out


def test_no_change_is_an_empty_diff(repo: Path, capsys: pytest.CaptureFixture) -> None:
    result = _diff(repo, capsys)
    assert (result["added"], result["removed"], result["changed"], result["warnings"]) == ([], [], [], [])
    assert "No changes." in _diff(repo, capsys, "markdown")


def test_field_level_changes(repo: Path, capsys: pytest.CaptureFixture) -> None:
    def edit(config: dict) -> None:
        config["sandbox-infra:warmPools"][0]["replicas"] = 4
        config["sandbox-infra:templates"][0]["image"] = "ghcr.io/example/agent-python-runtime:3.13.0"

    _edit_stack(repo, edit)
    result = _diff(repo, capsys)
    changed = {c["object"]: c for c in result["changed"]}
    assert set(changed) == {"SandboxWarmPool agents-dev/python", "SandboxTemplate agents-dev/python"}
    assert changed["SandboxWarmPool agents-dev/python"]["fields"] == [{"path": "spec.replicas", "before": 2, "after": 4}]
    image = changed["SandboxTemplate agents-dev/python"]["fields"][0]
    assert image["path"] == "spec.podTemplate.spec.containers" and "3.13.0" in json.dumps(image["after"])
    assert result["added"] == result["removed"] == [] and result["warnings"] == []


def test_added_and_removed_objects_with_data_warnings(repo: Path, capsys: pytest.CaptureFixture) -> None:
    def edit(config: dict) -> None:
        config["sandbox-infra:tenants"].append({"name": "agents-extra"})
        config["sandbox-infra:warmPools"] = []

    _edit_stack(repo, edit)
    result = _diff(repo, capsys)
    assert "Namespace agents-extra" in result["added"]
    assert "Role agents-extra/sandbox-claimer" in result["added"]
    assert result["removed"] == ["SandboxWarmPool agents-dev/python"]
    assert result["warnings"] == ["SandboxWarmPool agents-dev/python is removed: deleting it deletes its warm sandboxes"]


def test_renamed_pool_is_flagged(repo: Path, capsys: pytest.CaptureFixture) -> None:
    _edit_stack(repo, lambda config: config["sandbox-infra:warmPools"][0].update(name="python-warm"))
    markdown = _diff(repo, capsys, "markdown")
    assert markdown.startswith("<!-- sandbox-infra-diff:dev -->")
    assert "SandboxWarmPool agents-dev/python looks renamed to python-warm" in markdown
    # The runtime catalogue names the pool, so it changes with it.
    assert "**1 added, 1 changed, 1 removed**" in markdown


def test_downgrade_changes_api_versions_and_warns_about_crds(repo: Path, capsys: pytest.CaptureFixture) -> None:
    _edit_stack(repo, lambda config: config.update({"sandbox-infra:agentSandbox": {"version": "v0.4.6"}}))
    result = _diff(repo, capsys)
    assert result["added"] == [] and "Service agent-sandbox-system/agent-sandbox-webhook-service" in result["removed"]
    template = next(c for c in result["changed"] if c["object"] == "SandboxTemplate agents-dev/python")
    assert {"path": "apiVersion", "before": "extensions.agents.x-k8s.io/v1beta1",
            "after": "extensions.agents.x-k8s.io/v1alpha1"} in template["fields"]
    assert any("sandboxtemplates.extensions.agents.x-k8s.io stops serving v1beta1" in w for w in result["warnings"])


def test_base_is_rendered_by_its_own_code(repo: Path, capsys: pytest.CaptureFixture) -> None:
    builder = repo / "components" / "manifests" / "tenant.py"
    original = builder.read_text()
    builder.write_text(original.replace('"pods": str(quota.pods)', '"pods": str(quota.pods + 1)'))
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "builder change")
    _git(repo, "tag", "-f", "base")
    result = _diff(repo, capsys)
    assert result["changed"] == [{"object": "ResourceQuota agents-dev/sandbox-quota", "replaced": False,
                                  "fields": [{"path": "spec.hard.pods", "before": "21", "after": "20"}]}]


def test_bad_base_ref_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--stacks-dir", str(repo / "stacks"), "diff", "--stack", "dev", "--base", "no-such-ref"]) == 2
    assert "--base no-such-ref: not a git ref" in capsys.readouterr().err


def test_stack_new_since_base_is_all_added(repo: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copy(repo / "stacks" / "Pulumi.dev.yaml", repo / "stacks" / "Pulumi.dev2.yaml")
    assert main(["--stacks-dir", str(repo / "stacks"), "diff", "--stack", "dev2", "--base", "base",
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["removed"] == [] and len(result["added"]) > 10


def test_immutable_field_change_is_a_replacement() -> None:
    def binding(role: str) -> dict:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "b", "namespace": "n"}, "roleRef": {"kind": "Role", "name": role}}

    result = diff_manifests("s", "base", [binding("a")], [binding("b")])
    assert result.changed[0].replaced
    assert result.warnings == ["RoleBinding n/b is replaced (delete, then create): immutable field changed (roleRef.name)"]


def test_secret_values_never_appear() -> None:
    def secret(value: str) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
                "stringData": {"userdata": value}}

    rotated = diff_manifests("s", "base", [secret("password=hunter2")], [secret("password=correct-horse")])
    shown = json.dumps(rotated.as_json())
    assert "hunter2" not in shown and "correct-horse" not in shown
    assert rotated.as_json()["changed"][0]["fields"] == [
        {"path": "stringData.userdata", "before": REDACTED, "after": REDACTED}]
    same = diff_manifests("s", "base", [secret("password=hunter2")], [secret("password=hunter2")])
    assert same.changed == []
    assert "hunter2" not in json.dumps(diff_manifests("s", "base", [], [secret("password=hunter2")]).as_json())


def test_policy_delta_names_introduced_and_fixed_violations(repo: Path, capsys: pytest.CaptureFixture) -> None:
    _edit_stack(repo, lambda config: config["sandbox-infra:templates"][0].update(image="docker.io/someone/python:3.12"))
    result = _diff(repo, capsys)
    assert result["policy"]["fixed"] == []
    introduced = result["policy"]["introduced"]
    assert introduced and all("SandboxTemplate agents-dev/python" in v for v in introduced)
    assert any("docker.io/someone/python:3.12" in v for v in introduced)
    assert "#### Policy" in _diff(repo, capsys, "markdown")

    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "bad image")
    _git(repo, "tag", "-f", "base")
    _edit_stack(repo, lambda config: config["sandbox-infra:templates"][0].update(
        image="ghcr.io/example/agent-python-runtime:3.12.7"))
    assert _diff(repo, capsys)["policy"] == {"introduced": [], "fixed": introduced}
