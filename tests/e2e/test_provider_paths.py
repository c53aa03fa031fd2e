"""The provider's local paths, checked by the program before the engine registers anything
(components/specs/paths.py): `pulumi preview` of a stack whose kubeconfig path names no file, or
whose render directory is the project folder, stops with one config error and no traceback, and
the message never repeats a kubeconfig value (a token pasted where the path belongs is one word).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .pulumi_project import Project, make_project

STACK = "dev"
TOKEN_LIKE = "eyJhbGciOiJSUzI1NiJ9.bm90LWEtcmVhbC10b2tlbg.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("project"), None, (STACK,))


def _preview_error(project: Project) -> str:
    result = project.pulumi("preview", stack=STACK, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    return output


def test_a_kubeconfig_path_that_names_no_file_stops_the_run_unquoted(project: Project) -> None:
    project.config(STACK, "cluster.provider.kubeconfig", TOKEN_LIKE)
    try:
        output = _preview_error(project)
    finally:
        project.pulumi("config", "rm", "--path", "cluster.provider.kubeconfig", stack=STACK)
    assert "sandbox-infra:cluster.provider.kubeconfig: names no file; give the path of a readable kubeconfig" in output
    assert TOKEN_LIKE not in output
    print("\n" + next(line for line in output.splitlines() if "cluster.provider.kubeconfig" in line).strip())


def test_rendering_into_the_project_folder_stops_the_run(project: Project) -> None:
    project.config(STACK, "cluster.provider.renderYamlToDirectory", ".")
    try:
        output = _preview_error(project)
    finally:
        project.pulumi("config", "rm", "--path", "cluster.provider.renderYamlToDirectory", stack=STACK)
    assert f"sandbox-infra:cluster.provider.renderYamlToDirectory = '.': is the project folder ({Path(project.path).resolve()})" in output
    assert not (project.path / "1-manifest").exists() and not (project.path / "0-crd").exists()  # nothing rendered
    print("\n" + next(line for line in output.splitlines() if "renderYamlToDirectory" in line).strip())
