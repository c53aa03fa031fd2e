"""Sandboxes that really run: the node stack's warm pool on a real node (containerd, runc, the
kubelet; tests/e2e/node.py), its pods Ready through their real readiness probe, and each
promise of the hardened template checked from inside a running sandbox, through the
image's own /checks endpoint (tools/sandbox-image)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import pytest

from components.specs.loader import load_stack

from .fake_node import FakeControllerManager
from .helpers import failed_pool_wait, render, require
from .kube import apply_all, is_true, wait_for
from .node import gvisor_missing_reason, node_missing_reason
from .node_env import FIXTURES, STACK, NodeEnv, node_env
from .pulumi_project import PULUMI, make_project
from .toolchain import missing_reason
from .warm_pool_env import EXTENSIONS

TENANT = "agents-node"
POOL = "sandbox"
ROOT_STACK = "node-root"


def require_node() -> None:
    require("etcd", "kube-apiserver", "agent-sandbox-controller")
    if reason := node_missing_reason():
        pytest.skip(reason)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeEnv]:
    require_node()
    with node_env(tmp_path_factory.mktemp("node")) as started:
        yield started


def pool_pods(env: NodeEnv) -> list[dict]:
    pool = env.kube.get(EXTENSIONS, "SandboxWarmPool", POOL, TENANT)
    sandboxes = {s["metadata"]["uid"] for s in env.kube.list("agents.x-k8s.io/v1beta1", "Sandbox", TENANT)["items"]
                 if any(ref["uid"] == pool["metadata"]["uid"] for ref in s["metadata"].get("ownerReferences", []))}
    return [p for p in env.kube.list("v1", "Pod", TENANT)["items"]
            if any(ref["uid"] in sandboxes for ref in p["metadata"].get("ownerReferences", []))]


def describe(env: NodeEnv) -> str:
    pods = env.kube.list("v1", "Pod", TENANT)["items"]
    lines = [f"{p['metadata']['name']}: {p.get('status', {}).get('phase')} "
             f"{[c.get('state') for c in p.get('status', {}).get('containerStatuses', [])]}" for p in pods]
    return "\n".join(lines) + "\n--- kubelet log tail:\n" + env.node.log("kubelet")[-3000:]


@pytest.fixture(scope="module")
def deployed(env: NodeEnv, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`pulumi up` of the node stack with waitForWorkloads on: it returns only once the warm pool
    reports its replicas ready, i.e. once the kubelet's readiness probes pass. Without the Pulumi
    pieces the objects are applied as admin instead (and the `pulumi up` test skips)."""
    if missing_reason(*PULUMI):
        env.apply()
        return "applied"
    project = make_project(tmp_path_factory.mktemp("project"), env.plane, (STACK,),
                           extra_stack_files=(FIXTURES / f"Pulumi.{STACK}.yaml",))
    project.config(STACK, "cluster.waitForWorkloads", True)
    started = time.monotonic()
    result = project.pulumi("up", "--yes", "--skip-preview", stack=STACK, check=False, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"pulumi up of the node stack failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                    f"{result.stderr[-3000:]}\n{describe(env)}")
    return f"pulumi up with waitForWorkloads: {time.monotonic() - started:.1f} s"


def test_pulumi_up_returns_once_the_warm_pool_is_ready_through_real_probes(env: NodeEnv, deployed: str) -> None:
    if reason := missing_reason(*PULUMI):
        pytest.skip(reason)
    print(f"\n{deployed}")
    replicas = env.first("SandboxWarmPool")["spec"]["replicas"]
    # Checked right after `up` returned, not waited for: the engine waited.
    assert env.kube.get(EXTENSIONS, "SandboxWarmPool", POOL, TENANT)["status"]["readyReplicas"] == replicas
    assert sum(is_true(p, "Ready") for p in pool_pods(env)) == replicas


def test_the_warm_pool_pods_run_the_built_image_and_pass_their_probe(env: NodeEnv, deployed: str) -> None:
    replicas = env.first("SandboxWarmPool")["spec"]["replicas"]
    try:
        wait_for(f"warm pool {POOL} to report {replicas} ready replicas",
                 lambda: env.kube.get(EXTENSIONS, "SandboxWarmPool", POOL, TENANT).get("status", {})
                 .get("readyReplicas") == replicas, timeout=180, interval=0.5)
    except TimeoutError as error:
        pytest.fail(f"{error}\n{describe(env)}")
    pods = [p for p in pool_pods(env) if is_true(p, "Ready")]
    assert len(pods) == replicas
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "agent", "scheme": "HTTP"}
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] is True and "running" in status["state"]
        # The image built and imported for this run, not a pulled one.
        assert status["imageID"].endswith(env.node.digests[container["image"]].split(":")[1]), status["imageID"]
        assert env.node.get(pod, "/healthz").text.strip() == "ok"


def ready_pod(env: NodeEnv, deployed: str) -> dict:
    return wait_for("a Ready pool pod", lambda: next((p for p in pool_pods(env) if is_true(p, "Ready")), None),
                    timeout=120)


def assert_hardened(checks: dict) -> None:
    """What the template promises, as the sandbox's own /checks sees it from inside."""
    assert (checks["uid"], checks["gid"]) == (65532, 65532)
    assert checks["capEff"] == "0000000000000000"
    assert checks["capPrm"] == "0000000000000000"
    assert checks["noNewPrivs"] == "1"
    assert checks["seccomp"] == "2", "seccomp mode 2 (filter): RuntimeDefault applied"
    assert "read-only file system" in checks["rootWriteError"]
    assert checks["tmpWriteError"] == ""
    assert checks["serviceAccountTokenMounted"] is False
    limit = checks["memoryLimitV1"] if not checks["memoryLimitV1"].startswith("error") else checks["memoryLimitV2"]
    assert limit == str(64 * 2**20), checks


def test_inside_a_running_sandbox_the_template_promises_hold(env: NodeEnv, deployed: str) -> None:
    pod = ready_pod(env, deployed)
    checks = env.node.get(pod, "/checks").json()
    print(f"\n/checks of {pod['metadata']['name']}: {checks}")
    assert_hardened(checks)


def test_the_memory_limit_is_enforced_by_the_cgroup(env: NodeEnv, deployed: str) -> None:
    pod = ready_pod(env, deployed)
    small = env.node.get(pod, "/alloc?mib=16").json()
    assert (small["exitCode"], small["output"]) == (0, "16"), small
    big = env.node.get(pod, "/alloc?mib=256", timeout=120).json()
    print(f"\n/alloc?mib=256 under a 64Mi limit: {big}")
    assert big["signal"] == "killed", f"the cgroup's OOM killer should end the child: {big}"


def test_tmp_is_writable_but_size_limited(env: NodeEnv, deployed: str) -> None:
    """/tmp is a disk emptyDir with sizeLimit 16Mi: the kubelet evicts the pod that writes past it."""
    pod = ready_pod(env, deployed)
    name = pod["metadata"]["name"]
    filled = env.node.get(pod, "/fill?mib=32", timeout=120).json()
    assert filled["written"] == 32 and filled["error"] == "", filled

    def evicted() -> dict | None:
        current = env.kube.list("v1", "Pod", TENANT, fieldSelector=f"metadata.name={name}")["items"]
        if not current:
            return {"reason": "deleted", "message": "pod deleted after eviction"}
        status = current[0].get("status", {})
        return status if status.get("reason") == "Evicted" else None

    status = wait_for(f"pod {name} to be evicted for its /tmp", evicted, timeout=120, interval=1)
    print(f"\n{name}: {status.get('reason')}: {status.get('message')}")
    if status["reason"] == "Evicted":
        assert "scratch" in status["message"] and "exceeds the limit" in status["message"], status["message"]



def test_a_gvisor_sandbox_runs_under_gvisor_and_keeps_the_promises(env: NodeEnv, deployed: str) -> None:
    """RuntimeClass gvisor (handler runsc: gVisor's containerd-shim-runsc-v1 and runsc, built by
    tools/build.sh from gvisor.dev/gvisor) on the node stack's own pod template."""
    if reason := gvisor_missing_reason():
        pytest.skip(reason)
    template = next(m for m in render(STACK, FIXTURES) if m["kind"] == "SandboxTemplate")["spec"]["podTemplate"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "gvisor-check", "namespace": TENANT, "labels": template["metadata"]["labels"]},
           "spec": {**copy.deepcopy(template["spec"]), "runtimeClassName": "gvisor"}}
    env.kube.create(pod)

    def outcome() -> dict | None:
        current = env.kube.get("v1", "Pod", "gvisor-check", TENANT)
        waiting = [c["state"]["waiting"] for c in current.get("status", {}).get("containerStatuses", [])
                   if c.get("state", {}).get("waiting", {}).get("reason") not in (None, "ContainerCreating")]
        return current if is_true(current, "Ready") or waiting else None

    try:
        current = wait_for("the gVisor pod to be Ready", outcome, timeout=180, interval=1)
    except TimeoutError as error:
        pytest.fail(f"{error}\n{describe(env)}\n--- containerd log tail:\n{env.node.log('containerd')[-3000:]}")
    if not is_true(current, "Ready"):
        pytest.fail(f"the gVisor pod did not start: {current['status']['containerStatuses']}\n"
                    f"--- containerd log tail:\n{env.node.log('containerd')[-3000:]}")
    checks = env.node.get(current, "/checks").json()
    print(f"\n/checks under gVisor: {checks}")
    assert "gVisor" in checks["dmesg"], checks["dmesg"]
    assert checks["kernelRelease"] != env.node.host_kernel, "gVisor reports its own kernel version"
    assert_hardened(checks)


def kubelet_refusal(env: NodeEnv, namespace: str) -> dict | None:
    for pod in env.kube.list("v1", "Pod", namespace)["items"]:
        for status in pod.get("status", {}).get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting", {})
            if waiting.get("reason") == "CreateContainerConfigError":
                return waiting
    return None


def test_a_template_that_cannot_run_fails_pulumi_up_fast_naming_it(
        env: NodeEnv, deployed: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """tests/e2e/stacks/Pulumi.node-root.yaml: every policy front-end accepts it (nothing in the
    objects says root; tests/test_e2e_support.py checks that), only the kubelet can see the
    image's USER, and it refuses to start the container. `pulumi up` with waitForWorkloads:
    the pool's PoolReadiness (components/pool_readiness.py) sees that and fails in one message
    naming the pool, the template and the kubelet's reason and message, well within the
    stack's readyTimeout, never after the provider's 10 minutes. Without the Pulumi pieces the
    objects are applied as admin and only the kubelet's refusal is checked."""
    manifests = render(ROOT_STACK, FIXTURES)
    namespace = next(m for m in manifests if m["kind"] == "Namespace")["metadata"]["name"]
    if missing_reason(*PULUMI):
        with FakeControllerManager(env.kube, [namespace]):
            apply_all(env.kube, [m for m in manifests if m["kind"] != "CustomResourceDefinition"])
            try:
                waiting = wait_for("the kubelet to refuse the root image", lambda: kubelet_refusal(env, namespace),
                                   timeout=120, interval=0.5)
            except TimeoutError as error:
                pytest.fail(f"{error}\n{describe(env)}")
        print(f"\nkubelet: {waiting['reason']}: {waiting['message']}")
        assert "runAsNonRoot and image will run as root" in waiting["message"]
        return
    project = make_project(tmp_path_factory.mktemp("root-project"), env.plane, (ROOT_STACK,),
                           extra_stack_files=(FIXTURES / f"Pulumi.{ROOT_STACK}.yaml",))
    project.config(ROOT_STACK, "cluster.waitForWorkloads", True)
    bound = load_stack(ROOT_STACK, project.stacks_dir).warm_pools[0].ready_timeout_seconds
    with FakeControllerManager(env.kube, [namespace]):
        started = time.monotonic()
        result = project.pulumi("up", "--yes", "--skip-preview", stack=ROOT_STACK, check=False, timeout=bound + 120)
        elapsed = time.monotonic() - started
        refusal = kubelet_refusal(env, namespace)
    output = result.stdout + result.stderr
    waited, diagnostics = failed_pool_wait(output)
    errors = [line for line in diagnostics if line.startswith("error:")]
    # The engine's own lines when a resource fails while the program still runs.
    generic = {"error: update failed", "error: Resource monitor has terminated, shutting down"}
    print(f"\npulumi up of {ROOT_STACK}: exit {result.returncode} after {elapsed:.1f} s; the wait failed after "
          f"{waited if waited is not None else '?'} s (bound {bound:g} s)\n" + "\n".join(errors))
    assert result.returncode != 0, f"pulumi up should fail:\n{output[-4000:]}"
    assert refusal is not None and "runAsNonRoot and image will run as root" in refusal["message"], describe(env)
    assert waited is not None and waited < bound, output[-4000:]
    assert elapsed < 600, "the Kubernetes provider's default await would have taken 10 minutes"
    (message,) = [e for e in errors if e not in generic]  # one message
    assert message.startswith("error: PoolNotReady: warm pool agents-node-root/root-image (template root-image) "
                              "cannot become ready: pod root-image-"), message
    assert "CreateContainerConfigError: container has runAsNonRoot and image will run as root" in message, message
    assert "Traceback" not in output, output[-4000:]
