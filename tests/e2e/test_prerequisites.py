"""Bring-your-own agent-sandbox (`agentSandbox.install: external`) against a second, empty
control plane (no agent-sandbox CRDs), through the real engine: `pulumi preview` and
`pulumi up` stop before anything is planned or applied, with one sentence naming every
missing API; once the CRDs are installed the same preview passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from components.prerequisites import agent_sandbox_crd_names

from .controlplane import ControlPlane
from .helpers import render
from .kube import apply_all, wait_established
from .pulumi_project import FIXTURES, Project, make_project

STACK = "external"
SENTENCE = re.compile(r"sandbox-infra:agentSandbox\.install is 'external', but the cluster does not serve the "
                      r"agent-sandbox APIs (?P<apis>[^:]+): install agent-sandbox first \(or set "
                      r"sandbox-infra:agentSandbox\.install: managed\); nothing was applied")


@pytest.fixture(scope="module")
def project(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield make_project(tmp_path_factory.mktemp("project"), plane, (STACK,),
                       extra_stack_files=(FIXTURES / f"Pulumi.{STACK}.yaml",))


def _objects(project: Project) -> set[tuple[str, str, str]]:
    """The kinds of object the stack would create, as the API server holds them now."""
    return {(kind, item["metadata"].get("namespace", ""), item["metadata"]["name"])
            for api_version, kind in (("v1", "Namespace"), ("rbac.authorization.k8s.io/v1", "Role"),
                                      ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "ResourceQuota"),
                                      ("v1", "LimitRange"), ("networking.k8s.io/v1", "NetworkPolicy"),
                                      ("apiextensions.k8s.io/v1", "CustomResourceDefinition"))
            for item in project.kube.list(api_version, kind)["items"]}


def _fails_with_one_sentence(project: Project, *args: str) -> str:
    result = project.pulumi(*args, stack=STACK, check=False)
    output = result.stdout + result.stderr
    print(f"\n$ pulumi {' '.join(args)}  (exit {result.returncode})\n{output[-2500:]}")
    assert result.returncode != 0
    sentences = SENTENCE.findall(output)
    assert sentences, "no sentence naming the missing APIs"
    assert sorted(sentences[0].split(", ")) == agent_sandbox_crd_names()
    assert "Traceback" not in output and "does not exist" not in output, "more than the one sentence"
    return output


def test_preview_and_up_name_every_missing_api_and_apply_nothing(project: Project) -> None:
    before = _objects(project)
    # Empty of agent-sandbox: every control plane here also has Cilium's CRD (controlplane.py).
    assert not [o for o in before if o[0] == "CustomResourceDefinition" and o[2] in agent_sandbox_crd_names()], \
        "the second control plane has agent-sandbox CRDs"
    _fails_with_one_sentence(project, "preview")
    _fails_with_one_sentence(project, "up", "--yes", "--skip-preview")
    assert _objects(project) == before, "pulumi up applied something"
    state = project.pulumi("stack", "export", stack=STACK).stdout
    assert '"type": "kubernetes:' not in state.replace("pulumi:providers:kubernetes", ""), \
        "the engine recorded Kubernetes objects"


def test_once_agent_sandbox_is_installed_the_same_preview_passes(project: Project) -> None:
    crds = [m for m in render("dev") if m["kind"] == "CustomResourceDefinition"]
    apply_all(project.kube, crds)  # what "install agent-sandbox first" does, minus the controller
    wait_established(project.kube, crds)
    result = project.pulumi("preview", stack=STACK)
    assert "checking that its CRDs are registered" in result.stdout
