"""A real agent-sandbox upgrade through the engine: the dev stack goes up on v0.4.6
(v1alpha1 only), its config moves to v0.5.6 (v1beta1 storage, v1alpha1 converted by the
controller's webhook), the preview plans templates and pools as in-place updates (no
replace, no delete), `pulumi up` succeeds, and the live SandboxWarmPool keeps its UID.

The v0.5.6 controller runs out of cluster (tests/e2e/controller.py) to serve the
conversion webhook that reading the v1alpha1-stored objects as v1beta1 needs.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .controller import agent_sandbox_controller
from .controlplane import control_plane
from .helpers import require
from .kube import apply_all
from .pulumi_project import stack_on_fresh_plane

OLD, NEW = "v0.4.6", "v0.5.6"
AGENT_SANDBOX_KINDS = ("SandboxTemplate", "SandboxWarmPool")
AGENT_SANDBOX_GROUPS = ("agents.x-k8s.io", "extensions.agents.x-k8s.io")


def test_upgrade_updates_templates_and_pools_in_place(tmp_path: Path) -> None:
    require("agent-sandbox-controller")
    # The second control plane (see below) shares nothing with the first until the upgrade, so it
    # starts in the background while the stack goes up on v0.4.6.
    with (contextlib.ExitStack() as later, ThreadPoolExecutor(max_workers=1) as background,
          stack_on_fresh_plane(tmp_path, "dev") as project):
        webhook_plane_started = background.submit(later.enter_context, control_plane(tmp_path / "webhook-plane"))
        project.config("dev", "agentSandbox.version", OLD)
        old = project.rendered("dev")
        project.pulumi("up", "--yes", "--skip-preview")
        pool = next(m for m in old if m["kind"] == "SandboxWarmPool")
        assert pool["apiVersion"].endswith("/v1alpha1")
        name, namespace = pool["metadata"]["name"], pool["metadata"]["namespace"]
        uid = project.kube.get(pool["apiVersion"], "SandboxWarmPool", name, namespace)["metadata"]["uid"]

        project.config("dev", "agentSandbox.version", NEW)
        print(project.pulumi("preview", "--diff").stdout[-6000:])
        steps = json.loads(project.pulumi("preview", "--json").stdout)["steps"]
        ops = {(step["urn"].split("::")[-2].split("$")[-1], step["urn"].split("::")[-1]): step["op"]
               for step in steps}
        print(json.dumps({f"{t} {n}": op for (t, n), op in sorted(ops.items())}, indent=1))
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
