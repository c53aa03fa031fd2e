"""A real agent-sandbox upgrade through the engine: the dev stack goes up on v0.4.6
(v1alpha1 only), its config moves to v0.5.6 (v1beta1 storage, v1alpha1 converted by the
controller's webhook), the preview plans templates and pools as in-place updates (no
replace, no delete), `pulumi up` succeeds, and the live SandboxWarmPool keeps its UID.

The v0.5.6 controller runs out of cluster (tests/e2e/controller.py) to serve the
conversion webhook that reading the v1alpha1-stored objects as v1beta1 needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .controller import agent_sandbox_controller
from .controlplane import control_plane, uses_cluster_crds
from .fake_node import FakeControllerManager
from .helpers import render, require, shipped_contexts
from .kube import apply_all, wait_established
from .pulumi_project import (
    FIXTURES,
    PULUMI,
    Project,
    make_project,
    register_virt_operator_crds,
    stack_on_fresh_plane,
    uses_kubevirt,
)
from .toolchain import ROOT

OLD, NEW = "v0.4.6", "v0.5.6"
AGENT_SANDBOX_KINDS = ("SandboxTemplate", "SandboxWarmPool")
AGENT_SANDBOX_GROUPS = ("agents.x-k8s.io", "extensions.agents.x-k8s.io")


def test_upgrade_updates_templates_and_pools_in_place(tmp_path: Path) -> None:
    require("agent-sandbox-controller")
    # The second control plane (see below) shares nothing with the first until the upgrade, so it
    # starts in the background while the stack goes up on v0.4.6.
    with (contextlib.ExitStack() as later, ThreadPoolExecutor(max_workers=1) as background,
          stack_on_fresh_plane(tmp_path, "dev") as project):
        webhook_plane_started = background.submit(later.enter_context, control_plane(tmp_path / "webhook-plane",
                                                                                    cluster_crds=False))
        project.config("dev", "agentSandbox.version", OLD)
        old = project.rendered("dev")
        project.pulumi("up", "--yes", "--skip-preview")
        pool = next(m for m in old if m["kind"] == "SandboxWarmPool")
        assert pool["apiVersion"].endswith("/v1alpha1")
        name, namespace = pool["metadata"]["name"], pool["metadata"]["namespace"]
        uid = project.kube.get(pool["apiVersion"], "SandboxWarmPool", name, namespace)["metadata"]["uid"]

        project.config("dev", "agentSandbox.version", NEW)
        steps = json.loads(project.pulumi("preview", "--json", "--diff").stdout)["steps"]
        ops = {_type_and_name(step["urn"]): step["op"] for step in steps}
        for step in steps:  # the plan, for the log: each change and the fields it changes
            if step["op"] != "same":
                print(step["op"], *_type_and_name(step["urn"]), sorted(step.get("detailedDiff") or ()))
        destructive = {k: op for k, op in ops.items() if op in ("replace", "create-replacement", "delete-replaced",
                                                                 "delete", "discard")}
        assert not destructive, f"the upgrade would replace or delete: {destructive}"
        for kind in AGENT_SANDBOX_KINDS:
            planned = {op for (t, _), op in ops.items() if t.endswith(f":{kind}")}
            assert planned == {"update"}, f"{kind}: planned {planned}, expected in-place updates"

        # The v0.5.6 controller cannot start against v0.4.6 CRDs, so for the upgrade itself it
        # runs against a second control plane that has the v0.5.6 CRDs and serves the
        # conversion webhook for this one (see tests/e2e/controller.py).
        webhook_plane = webhook_plane_started.result()
        crds = [m for m in project.rendered("dev") if m["kind"] == "CustomResourceDefinition"
                and m["spec"]["group"] in AGENT_SANDBOX_GROUPS]
        apply_all(webhook_plane.client(), crds)
        with agent_sandbox_controller(webhook_plane, conversion_for=project.kube):
            project.pulumi("up", "--yes", "--skip-preview")
        new_pool = next(m for m in project.rendered("dev") if m["kind"] == "SandboxWarmPool")
        assert new_pool["apiVersion"].endswith("/v1beta1")
        live = project.kube.get(new_pool["apiVersion"], "SandboxWarmPool", name, namespace)
        assert live["metadata"]["uid"] == uid, "the pool was replaced, not updated"
        assert live["spec"]["replicas"] == new_pool["spec"]["replicas"]


def _type_and_name(urn: str) -> tuple[str, str]:
    return urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]


# --- upgrading the program itself --------------------------------------------------------
# Users' state was written by the previous program. main before issue 21 (one graph, one
# component API) is the program they run today; UPGRADE_FROM names another commit to start from.
PREVIOUS_MAIN = os.environ.get("UPGRADE_FROM", "99694002dcf886caa2d3fda65e4d3e4f87e4affd")
PROGRAM = ("components", "sandbox_infra", "policies")
DESTRUCTIVE = ("replace", "create-replacement", "delete-replaced", "delete", "discard", "discard-replaced")


def _previous_program(workdir: Path) -> Path:
    """The program files of PREVIOUS_MAIN (`git archive`), next to the project copy, with its
    stacks/: the program finds its layers (stacks/layers/) beside its own modules, through the
    symlinks, and without them it would run every stack on the defaults (admission enforce)."""
    target = workdir / "previous"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_MAIN, "__main__.py", *PROGRAM,
                              "stacks"],
                             capture_output=True, check=True, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _run_program_from(project: Project, source: Path) -> None:
    """Point the project copy at the program in `source`; stacks, state and venv stay."""
    shutil.copy(source / "__main__.py", project.path / "__main__.py")
    for name in PROGRAM:
        (project.path / name).unlink()
        (project.path / name).symlink_to(source / name)


@pytest.mark.parametrize("stack", ["dev", "external"])
def test_upgrade_from_previous_main_replaces_and_deletes_nothing(tmp_path: Path, stack: str) -> None:
    """`pulumi up` of the previous main's program, then a preview of this one on the same live
    API server and state: nothing is replaced or deleted (a URN that changed without an alias
    would be a delete and a create). `external` is the bring-your-own install, whose CRD check moved
    under the AgentSandbox component (an alias to its old top-level URN)."""
    require("etcd", "kube-apiserver", *PULUMI)
    previous = _previous_program(tmp_path)
    # Rendered once, from its stack file: the project copy differs only in waitForWorkloads.
    manifests = render(stack, FIXTURES if (FIXTURES / f"Pulumi.{stack}.yaml").exists() else ROOT / "stacks")
    with control_plane(tmp_path / "plane", shipped_contexts(), uses_cluster_crds(manifests)) as plane:
        project = make_project(tmp_path / "project", plane, (stack,), extra_stack_files=(FIXTURES / "Pulumi.external.yaml",))
        if stack == "external":  # someone else installed agent-sandbox: its CRDs are there
            crds = [m for m in render("dev") if m["kind"] == "CustomResourceDefinition"
                    and m["spec"]["group"] in AGENT_SANDBOX_GROUPS]
            apply_all(project.kube, crds)
            wait_established(project.kube, crds)
        if uses_kubevirt(project, stack):
            register_virt_operator_crds(project.kube)
        namespaces = sorted({m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"})
        with FakeControllerManager(project.kube, namespaces):
            _run_program_from(project, previous)
            project.pulumi("up", "--yes", "--skip-preview", stack=stack)
            # What the previous program itself plans on a second run (objects the API server
            # defaults or the fake controller manager touches): not the new program's doing.
            baseline = _changes(project, stack)
            _run_program_from(project, ROOT)
            changes = _changes(project, stack)
        print(f"{stack}: the previous program plans {Counter(op for op, _ in baseline.values())}, "
              f"this one {Counter(op for op, _ in changes.values())}")
        for urn in sorted(set(changes) | set(baseline)):  # what this program plans beyond the previous one's rerun
            if changes.get(urn) != baseline.get(urn):
                print(f"  {urn}: previous {baseline.get(urn)}, this {changes.get(urn)}")
        destructive = sorted((op, urn) for urn, (op, _) in changes.items() if op in DESTRUCTIVE)
        assert not destructive, f"the new program would replace or delete: {destructive}"
        # Nor does it touch a live object: what it plans beyond the previous program's own rerun
        # is the creation of new components (e.g. `external`'s AgentSandbox), which hold nothing,
        # and reads (lookups of CRDs someone else installed, under the component's new URN).
        new_steps = {urn: step for urn, step in changes.items() if baseline.get(urn) != step}
        touched = sorted((op, urn) for urn, (op, _) in new_steps.items() if op != "read" and not (
            op == "create" and urn.split("::")[-2].split("$")[-1].startswith("sandbox-infra:index:")))
        assert not touched, f"the new program would change live objects: {touched}"


def _changes(project: Project, stack: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """URN -> (operation, changed input keys) of every step `pulumi preview` plans but `same`."""
    steps = json.loads(project.pulumi("preview", "--json", "--diff", stack=stack).stdout)["steps"]
    return {step["urn"]: (step["op"], tuple(sorted({*(step.get("diffReasons") or ()), *(step.get("detailedDiff") or {})})))
            for step in steps if step["op"] != "same"}
