"""The bounded, fail-fast wait for `waitForReady` pools: pod status JSON in, verdict and message
out (components/readiness.py), the polling loop on a fake clock and the dynamic provider
(components/pool_readiness.py), and where the program puts the wait (components/warm_pool.py).
On a real kubelet: tests/e2e/test_node.py."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import pytest

import components.pool_readiness as pool_readiness
from components.errors import ConfigError
from components.pool_readiness import PoolNotReady, PoolReadinessProvider, wait_for_pool
from components.readiness import FAIL_AFTER_SECONDS, PoolWatch, pod_problems, pool_pods
from components.specs import spec_from_config
from components.stack import deploy
from components.upstream import UpstreamLoader

from .pulumi_harness import run_under_mocks

SUBJECT = "warm pool team-a/python (template python)"


def pool(ready: int = 0, uid: str = "pool-uid") -> dict[str, Any]:
    return {"metadata": {"name": "python", "namespace": "team-a", "uid": uid}, "status": {"readyReplicas": ready}}


def pod(name: str, *, waiting: str | None = None, message: str = "", ready: bool = False,
        scheduled: dict[str, str] | None = None, last: dict[str, Any] | None = None, owner: str = "sandbox-1") -> dict:
    """A pod as the API server returns it, in one of the states the kubelet reports."""
    container: dict[str, Any] = {"name": "agent", "ready": ready, "restartCount": 0}
    if waiting is not None:
        container["state"] = {"waiting": {"reason": waiting, "message": message}}
    else:
        container["state"] = {"running": {"startedAt": "2026-12-06T17:00:00Z"}}
    if last is not None:
        container["lastState"] = {"terminated": last}
    conditions = [{"type": "PodScheduled", "status": "True"},
                  {"type": "Ready", "status": "True" if ready else "False"}]
    status: dict[str, Any] = {"phase": "Running" if waiting is None else "Pending", "conditions": conditions,
                              "containerStatuses": [container]}
    if scheduled is not None:
        status = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", **scheduled}]}
    return {"metadata": {"name": name, "namespace": "team-a", "ownerReferences": [{"kind": "Sandbox", "uid": owner}]},
            "status": status}


ROOT_MESSAGE = ('container has runAsNonRoot and image will run as root (pod: "python-abc_team-a(1)", '
                'container: agent)')


def watch(timeout: float = 300, replicas: int = 2) -> PoolWatch:
    return PoolWatch("team-a", "python", "python", replicas, timeout, started=0.0)


# --- one pod -----------------------------------------------------------------------------

def test_a_ready_pod_has_no_problem() -> None:
    assert pod_problems(pod("p", ready=True)) == []


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_progress_is_not_a_failure(reason: str) -> None:
    (problem,) = pod_problems(pod("p", waiting=reason))
    assert (problem.reason, problem.failing) == (reason, False)


@pytest.mark.parametrize("reason", ["CreateContainerConfigError", "ErrImagePull", "ImagePullBackOff",
                                    "CrashLoopBackOff", "InvalidImageName", "CreateContainerError"])
def test_reasons_the_kubelet_retries_in_vain_are_failures(reason: str) -> None:
    (problem,) = pod_problems(pod("p", waiting=reason, message="details"))
    assert problem.failing and problem.describe() == f"pod p container agent: {reason}: details"


def test_a_crash_loop_says_how_the_container_ended() -> None:
    crashed = pod("p", waiting="CrashLoopBackOff", message="back-off 20s restarting failed container=agent",
                  last={"exitCode": 3, "reason": "Error", "message": "python: can't open file '/srv/app.py'"})
    (problem,) = pod_problems(crashed)
    assert problem.message == ("last exit code 3 (Error); python: can't open file '/srv/app.py'; "
                               "back-off 20s restarting failed container=agent")


def test_unschedulable_waits_for_a_node_and_says_why() -> None:
    pending = pod("p", scheduled={"reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."})
    (problem,) = pod_problems(pending)
    assert (problem.reason, problem.failing) == ("Unschedulable", False)  # a cluster autoscaler may add a node
    assert "Insufficient memory" in problem.message


def test_a_running_pod_that_is_not_ready_yet_is_waited_for() -> None:
    (problem,) = pod_problems(pod("p"))
    assert (problem.reason, problem.failing) == ("NotReady", False)


def test_a_pod_not_yet_scheduled_is_waited_for() -> None:
    bare = {"metadata": {"name": "p"}, "status": {"phase": "Pending"}}
    (problem,) = pod_problems(bare)
    assert (problem.reason, problem.failing) == ("Pending", False)


def test_the_pools_pods_are_found_through_its_sandboxes() -> None:
    sandboxes = [{"metadata": {"uid": "sandbox-1", "ownerReferences": [{"uid": "pool-uid"}]}},
                 {"metadata": {"uid": "sandbox-9", "ownerReferences": [{"uid": "other-pool"}]}}]
    pods = [pod("b", owner="sandbox-1"), pod("other", owner="sandbox-9"), pod("a", owner="pool-uid")]
    assert [p["metadata"]["name"] for p in pool_pods(pool(), sandboxes, pods)] == ["a", "b"]


# --- the pool over time ------------------------------------------------------------------

def test_a_ready_pool_is_ready() -> None:
    verdict = watch().observe(pool(ready=2), [pod("a", ready=True), pod("b", ready=True)], now=1)
    assert verdict.state == "ready"


def test_a_healthy_pool_on_its_way_keeps_waiting_until_the_bound() -> None:
    w = watch(timeout=120)
    on_the_way = [pod("a", ready=True), pod("b", waiting="ContainerCreating")]
    for now in (0, 30, 60, 119):
        verdict = w.observe(pool(ready=1), on_the_way, now)
        assert verdict.state == "waiting", verdict
    assert verdict.message == f"{SUBJECT}: 1 of 2 replicas ready; pod b container agent: ContainerCreating"
    late = w.observe(pool(ready=1), on_the_way, 120)
    assert late.state == "failed"
    assert late.message == (f"{SUBJECT} is not ready after 2 min: 1 of 2 replicas ready; pod b container agent: "
                            "ContainerCreating. If it only needs longer, raise the pool's readyTimeout (at most 1h)")


def test_a_container_the_kubelet_refuses_fails_the_wait_once_the_refusal_holds() -> None:
    w = watch()
    refused = [pod("python-abc", waiting="CreateContainerConfigError", message=ROOT_MESSAGE)]
    assert w.observe(pool(), refused, 5).state == "waiting"
    assert w.observe(pool(), refused, 5 + FAIL_AFTER_SECONDS - 1).state == "waiting"
    verdict = w.observe(pool(), refused, 5 + FAIL_AFTER_SECONDS)
    assert verdict.state == "failed"
    assert verdict.message == (
        f"{SUBJECT} cannot become ready: pod python-abc container agent: CreateContainerConfigError: {ROOT_MESSAGE}. "
        "0 of 2 replicas ready; the kubelet keeps retrying, so waiting longer would not help: "
        "fix the template or its image")


def test_a_failure_that_clears_restarts_its_clock() -> None:
    w = watch()
    failing, starting = [pod("a", waiting="ErrImagePull")], [pod("a", waiting="ContainerCreating")]
    w.observe(pool(), failing, 0)
    w.observe(pool(), starting, 10)  # the registry came back
    w.observe(pool(), failing, 15)
    assert w.observe(pool(), failing, 15 + FAIL_AFTER_SECONDS - 1).state == "waiting"
    assert w.observe(pool(), failing, 15 + FAIL_AFTER_SECONDS).state == "failed"


def test_pull_errors_that_change_their_reason_keep_one_clock() -> None:
    w = watch()
    w.observe(pool(), [pod("a", waiting="ErrImagePull")], 0)
    verdict = w.observe(pool(), [pod("a", waiting="ImagePullBackOff", message="Back-off pulling image")],
                        FAIL_AFTER_SECONDS)
    assert verdict.state == "failed" and "ImagePullBackOff: Back-off pulling image" in verdict.message


def test_several_pods_with_one_reason_make_one_message() -> None:
    w = watch(replicas=3)
    pods = [pod(name, waiting="CreateContainerConfigError", message=ROOT_MESSAGE) for name in ("a", "b", "c")]
    w.observe(pool(), pods, 0)
    verdict = w.observe(pool(), pods, FAIL_AFTER_SECONDS)
    assert verdict.state == "failed" and verdict.message.count("\n") == 0
    assert "pod a container agent: CreateContainerConfigError" in verdict.message
    assert "(and 2 more of its pods: CreateContainerConfigError)" in verdict.message


def test_unschedulable_pods_are_reported_at_the_bound_not_before() -> None:
    w = watch(timeout=60)
    pending = [pod("a", scheduled={"reason": "Unschedulable", "message": "0/3 nodes are available"})]
    assert w.observe(pool(), pending, 59).state == "waiting"
    verdict = w.observe(pool(), pending, 60)
    assert verdict.state == "failed" and "pod a: Unschedulable: 0/3 nodes are available" in verdict.message


def test_a_missing_pool_and_a_pool_without_pods_are_waited_for() -> None:
    w = watch(timeout=30)
    assert w.observe(None, [], 0).message == f"{SUBJECT}: the SandboxWarmPool does not exist"
    assert w.observe(pool(), [], 1).message == f"{SUBJECT}: 0 of 2 replicas ready; no pod of the pool yet"
    assert "not ready after 30 s: 0 of 2 replicas ready; no pod of the pool yet" in w.observe(pool(), [], 30).message


# --- the polling loop and the provider ---------------------------------------------------

PROPS = {"namespace": "team-a", "pool": "python", "template": "python", "replicas": 2, "apiVersion": "v1beta1",
         "timeoutSeconds": 60, "kubeconfig": None, "context": None}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_loop_returns_once_the_pool_is_ready() -> None:
    clock = FakeClock()
    states = iter([(pool(0), [pod("a", waiting="ContainerCreating")])] * 3 + [(pool(2), [])])
    verdict = wait_for_pool(PROPS, lambda: next(states), clock, clock.sleep)
    assert verdict.state == "ready" and clock.now == 6


def test_the_loop_reads_again_after_an_api_error_and_is_bounded() -> None:
    clock = FakeClock()

    def unreachable() -> tuple:
        raise OSError("connection refused")

    verdict = wait_for_pool(PROPS, unreachable, clock, clock.sleep)
    assert verdict.state == "failed" and clock.now == 60
    assert "not ready after 60 s: cannot read it from the cluster: OSError: connection refused" in verdict.message


def test_the_loop_fails_fast_on_a_refused_container() -> None:
    clock = FakeClock()
    refused = (pool(0), [pod("a", waiting="CreateContainerConfigError", message=ROOT_MESSAGE)])
    verdict = wait_for_pool(PROPS, lambda: refused, clock, clock.sleep)
    assert verdict.state == "failed" and clock.now == FAIL_AFTER_SECONDS


def test_the_provider_fails_with_the_message_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamic provider host shows `traceback.format_exc()`: only the message must be in it."""
    monkeypatch.setattr(sys, "tracebacklimit", 1000, raising=False)
    monkeypatch.setattr(pool_readiness, "Cluster", lambda kubeconfig, context: None)
    monkeypatch.setattr(pool_readiness, "wait_for_pool",
                        lambda props, read: pool_readiness.Verdict("failed", f"{SUBJECT} cannot become ready: x"))
    with pytest.raises(PoolNotReady):
        try:
            PoolReadinessProvider().create(dict(PROPS))
        except PoolNotReady:
            assert traceback.format_exc() == f"PoolNotReady: {SUBJECT} cannot become ready: x\n"
            raise


def test_the_provider_returns_what_it_waited_for_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_readiness, "Cluster", lambda kubeconfig, context: None)
    monkeypatch.setattr(pool_readiness, "wait_for_pool", lambda props, read: pool_readiness.Verdict("ready", ""))
    result = PoolReadinessProvider().create({**PROPS, "kubeconfig": "apiVersion: v1\nkind: Config\n"})
    assert result.id == "team-a/python" and "kubeconfig" not in result.outs and result.outs["replicas"] == 2


def test_the_wait_runs_again_when_the_pool_changes_not_the_credentials() -> None:
    provider = PoolReadinessProvider()
    assert not provider.diff("id", PROPS, {**PROPS, "kubeconfig": "/other", "context": "other"}).changes
    for key, value in (("replicas", 3), ("timeoutSeconds", 600), ("template", "python-2")):
        diff = provider.diff("id", PROPS, {**PROPS, key: value})
        assert diff.changes and diff.replaces == [], key


# --- where the program waits -------------------------------------------------------------

def _gates(config: dict[str, Any], loader: UpstreamLoader) -> list:
    registrations = run_under_mocks(lambda: deploy(spec_from_config(config), loader))
    return [r for r in registrations if r.type == "pulumi-python:dynamic/sandbox-infra:PoolReadiness"]


def test_a_waiting_pool_gets_a_bounded_wait_after_the_pool(minimal_config, loader: UpstreamLoader,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cluster(*_: object) -> None:
        raise AssertionError("the program must not read the cluster")

    monkeypatch.setattr(pool_readiness, "Cluster", no_cluster)
    minimal_config["warmPools"][0].update(waitForReady=True, readyTimeout="90s")
    minimal_config["cluster"]["provider"] = {"context": "kind-dev"}
    (gate,) = _gates(minimal_config, loader)
    assert gate.name == "team-a/python"
    assert gate.parent.endswith("sandbox-infra:index:WarmPool::python")
    assert any(d.endswith("SandboxWarmPool::team-a/python") for d in gate.dependencies)
    watched = ("namespace", "pool", "template", "replicas", "apiVersion", "timeoutSeconds", "context")
    assert {k: gate.inputs[k] for k in watched} == {k: PROPS[k] for k in watched} | {"timeoutSeconds": 90,
                                                                                      "context": "kind-dev"}


@pytest.mark.parametrize("change", [
    {"pool": {"waitForReady": False}},
    {"cluster": {"waitForWorkloads": False}},
    {"pool": {"waitForReady": True, "replicas": 0}},
])
def test_no_wait_where_nothing_is_to_wait_for(minimal_config, loader: UpstreamLoader, change: dict) -> None:
    minimal_config["warmPools"][0].update({"waitForReady": True, **change.get("pool", {})})
    minimal_config["cluster"].update(change.get("cluster", {}))
    assert _gates(minimal_config, loader) == []


@pytest.mark.parametrize("value", ["5s", "2h", "soon"])
def test_a_ready_timeout_out_of_bounds_is_one_clear_error(minimal_config, value: str) -> None:
    minimal_config["warmPools"][0]["readyTimeout"] = value
    with pytest.raises(ConfigError) as error:
        spec_from_config(minimal_config)
    assert "warmPools[0].readyTimeout" in str(error.value) and value in str(error.value)


def test_render_says_which_pools_pulumi_up_waits_for_and_how_long(minimal_config) -> None:
    from sandbox_infra.render import summary

    minimal_config["warmPools"][0].update(waitForReady=True, readyTimeout="90s")
    assert summary("test", spec_from_config(minimal_config), [], None).endswith(
        "\n`pulumi up` waits for warm pools: python (2 ready, at most 90 s)")
    minimal_config["cluster"]["waitForWorkloads"] = False
    assert "waits" not in summary("test", spec_from_config(minimal_config), [], None)
