"""Warm pools for real: the agent-sandbox controller (built from its release tag) runs out of
cluster against the live API server, fills the dev stack's warm pool, and a SandboxClaim
adopts a warm sandbox. The tests play kubelet and scheduler (fake_node.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from .controller import controller_log
from .helpers import require
from .kube import ApiError, is_true, wait_for
from .warm_pool_env import EXTENSIONS, SANDBOXES, WarmPoolEnv, warm_pool_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmPoolEnv]:
    require("etcd", "kube-apiserver", "agent-sandbox-controller")
    with warm_pool_env(tmp_path_factory.mktemp("warm")) as started:
        yield started


def _pool(env: WarmPoolEnv) -> tuple[str, str, int]:
    pool = env.first("SandboxWarmPool")
    return pool["metadata"]["name"], pool["metadata"]["namespace"], pool["spec"]["replicas"]


def test_warm_pool_fills_with_ready_sandboxes_and_admitted_pods(env: WarmPoolEnv) -> None:
    name, namespace, replicas = _pool(env)
    assert replicas > 0
    wait_for(f"warm pool {name} to report {replicas} ready replicas",
             lambda: env.pool_status(name, namespace).get("readyReplicas") == replicas, timeout=90)
    sandboxes = env.ready_pool_sandboxes(name, namespace)
    assert len(sandboxes) == replicas
    pods = {p["metadata"]["name"]: p for p in env.kube.list("v1", "Pod", namespace)["items"]}
    template = env.first("SandboxTemplate")["spec"]["podTemplate"]["spec"]
    for sandbox in sandboxes:
        pod = next(p for p in pods.values() if any(ref["uid"] == sandbox["metadata"]["uid"]
                                                   for ref in p["metadata"].get("ownerReferences", [])))
        # Created by the controller and admitted into a namespace that enforces `restricted`.
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["containers"][0]["securityContext"] == template["containers"][0]["securityContext"]
        assert pod["spec"]["automountServiceAccountToken"] is False
    labels = env.kube.get("v1", "Namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_template_violating_pod_security_is_rejected_by_the_api_server(env: WarmPoolEnv) -> None:
    template = copy.deepcopy(env.first("SandboxTemplate"))
    namespace = template["metadata"]["namespace"]
    template["metadata"] = {"name": "insecure", "namespace": namespace}
    template["spec"].pop("networkPolicy", None)
    template["spec"]["networkPolicyManagement"] = "Unmanaged"
    container = template["spec"]["podTemplate"]["spec"]["containers"][0]
    container["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
    env.kube.apply(template)  # the CRD accepts any valid pod template ...
    env.kube.apply({"apiVersion": f"{EXTENSIONS}", "kind": "SandboxWarmPool",
                    "metadata": {"name": "insecure", "namespace": namespace},
                    "spec": {"replicas": 1, "sandboxTemplateRef": {"name": "insecure"}}})

    def rejection() -> str | None:  # ... but Pod Security admission refuses the pod the controller makes
        for sandbox in env.pool_sandboxes("insecure", namespace):
            message = next((c.get("message", "") for c in sandbox.get("status", {}).get("conditions", [])
                            if c["type"] == "Ready"), "")
            if "violates PodSecurity" in message:
                return message
        return None

    message = wait_for("the controller to report the Pod Security rejection", rejection, timeout=60)
    print(f"\nSandbox status: {message}")
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message
    rejected = {s["metadata"]["uid"] for s in env.pool_sandboxes("insecure", namespace)}
    owned = [p["metadata"]["name"] for p in env.kube.list("v1", "Pod", namespace)["items"]
             if any(ref["uid"] in rejected for ref in p["metadata"].get("ownerReferences", []))]
    assert owned == [], "no pod of the insecure template may exist"
    env.kube.delete(EXTENSIONS, "SandboxWarmPool", "insecure", namespace)


def test_a_claim_binds_a_warm_sandbox(env: WarmPoolEnv) -> None:
    name, namespace, replicas = _pool(env)
    wait_for("a full warm pool", lambda: len(env.ready_pool_sandboxes(name, namespace)) == replicas, timeout=90)
    warm = {s["metadata"]["name"] for s in env.ready_pool_sandboxes(name, namespace)}
    env.kube.create({"apiVersion": EXTENSIONS, "kind": "SandboxClaim",
                     "metadata": {"name": "claim-1", "namespace": namespace},
                     "spec": {"warmPoolRef": {"name": name}}})

    def bound() -> dict | None:
        claim = env.kube.get(EXTENSIONS, "SandboxClaim", "claim-1", namespace)
        return claim if is_true(claim, "Ready") and claim["status"].get("sandbox", {}).get("name") else None

    claim = wait_for("claim-1 to be Ready", bound, timeout=60)
    sandbox_name = claim["status"]["sandbox"]["name"]
    assert sandbox_name in warm, f"claim got {sandbox_name}, a cold sandbox, not one of the warm {sorted(warm)}"
    sandbox = env.kube.get(SANDBOXES, "Sandbox", sandbox_name, namespace)
    assert [ref["kind"] for ref in sandbox["metadata"]["ownerReferences"]] == ["SandboxClaim"]
    assert is_true(sandbox, "Ready")
    # The pool notices the adoption and warms a replacement.
    wait_for("the pool to refill", lambda: len(env.ready_pool_sandboxes(name, namespace)) == replicas, timeout=90)
    assert sandbox_name not in {s["metadata"]["name"] for s in env.ready_pool_sandboxes(name, namespace)}


def test_v1alpha1_is_served_through_the_loopback_conversion_webhook(env: WarmPoolEnv) -> None:
    name, namespace, replicas = _pool(env)
    try:
        old = env.kube.get("extensions.agents.x-k8s.io/v1alpha1", "SandboxWarmPool", name, namespace)
    except ApiError as error:
        pytest.fail(f"v1alpha1 read failed (conversion webhook unreachable?): {error}\n{controller_log(env.plane)[-2000:]}")
    assert old["apiVersion"] == "extensions.agents.x-k8s.io/v1alpha1"
    assert old["spec"]["replicas"] == replicas


def test_a_foreground_delete_of_the_pool_removes_its_sandboxes(env: WarmPoolEnv) -> None:
    """pulumi-kubernetes deletes in the foreground; the pool must go, and its sandboxes and pods with it."""
    name, namespace, _ = _pool(env)
    sandboxes = {s["metadata"]["uid"]: s["metadata"]["name"] for s in env.pool_sandboxes(name, namespace)}
    pods = [p["metadata"]["name"] for p in env.kube.list("v1", "Pod", namespace)["items"]
            if any(ref["uid"] in sandboxes for ref in p["metadata"].get("ownerReferences", []))]
    assert sandboxes and len(pods) == len(sandboxes)
    env.kube.delete(EXTENSIONS, "SandboxWarmPool", name, namespace, propagation="Foreground")
    wait_for("the pool to be deleted", lambda: not env.kube.exists(EXTENSIONS, "SandboxWarmPool", name, namespace))
    assert not any(env.kube.exists(SANDBOXES, "Sandbox", sandbox, namespace) for sandbox in sandboxes.values())
    wait_for("their pods to go", lambda: not any(env.kube.exists("v1", "Pod", p, namespace) for p in pods), timeout=30)
