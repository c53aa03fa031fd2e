"""Claim-to-bound latency: warm SandboxClaims against cold Sandbox creates, in one run, with
this project's e2e REST client (as admin) and with the official agent-sandbox client
(`k8s-agent-sandbox`) as the gateway, holding only its ServiceAccount token.

    make bench-claims     # or: .venv/bin/python -m benchmarks.claim_latency --claims 50 [--client official]

Starts etcd + kube-apiserver, applies the dev stack (its rendered objects, as admin: a
benchmark needs the objects, not the engine), runs the real agent-sandbox controller, and
plays kubelet (tests/e2e/fake_node.py). Then, one at a time:

- warm: create a SandboxClaim on the dev warm pool (pool full before each claim),
  time until the claim is Ready with a sandbox; count whether it got a warm one;
- cold: create a Sandbox with the same pod template, time until it is Ready.

The official client times `SandboxClient.create_sandbox(warmpool=...)` from call to return
(create, then its own watch until the claim is Ready): warm on the dev pool, cold on a pool
of 0 replicas with the same template (the gateway may not create Sandboxes, so its cold
start is a claim the controller serves from the template: one hop more than a cold Sandbox).

Each claim/sandbox is deleted afterwards (the fake controller-manager collects its
pod). By default the fake kubelet reports a pod Running as soon as it is bound, so the
cold figures leave out image pull and container start, which is what a warm pool
saves on a real node: they are the pure control-plane cost. `--pod-start-seconds`
adds a simulated start time per pod.

`--real-node` instead runs the e2e node stack on a real node (tests/e2e/node.py:
containerd + runc + the kubelet, root only): every cold start is a real container start
and Ready means the kubelet's readiness probe on /healthz passed. The official client
then also reaches each claimed sandbox's port 8888 through the pod IP
(`SandboxInClusterConnectionConfig`) and counts the answers.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from k8s_agent_sandbox import SandboxClient
from k8s_agent_sandbox.models import SandboxInClusterConnectionConfig

from tests.e2e.gateway import gateway_identity
from tests.e2e.kube import Kube, Manifest, is_true, wait_for
from tests.e2e.node import node_missing_reason
from tests.e2e.node_env import node_env
from tests.e2e.toolchain import missing_reason
from tests.e2e.warm_pool_env import EXTENSIONS, SANDBOXES, WarmPoolEnv, warm_pool_env

COLD_POOL = "bench-cold"  # 0 replicas: every claim on it is served cold, from the template


def _until(kube: Kube, api_version: str, kind: str, namespace: str, name: str,
           create: Callable[[], Manifest], done: Callable[[Manifest], bool], timeout: float = 60) -> tuple[float, Manifest]:
    """Open a watch, create the object, return (seconds from create to `done`, final object)."""
    resource_version = kube.list(api_version, kind, namespace, limit=1)["metadata"]["resourceVersion"]
    events = kube.watch(api_version, kind, namespace, resource_version=resource_version, timeout=timeout,
                        fieldSelector=f"metadata.name={name}")
    started = time.perf_counter()
    create()
    for _, obj in events:
        if done(obj):
            return time.perf_counter() - started, obj
    raise TimeoutError(f"{kind} {name} not done within {timeout:.0f} s")


def _claim_bound(claim: Manifest) -> bool:
    return is_true(claim, "Ready") and bool(claim.get("status", {}).get("sandbox", {}).get("name"))


def warm_claims(env: WarmPoolEnv, count: int) -> tuple[list[float], int]:
    pool = env.first("SandboxWarmPool")
    name, namespace, replicas = pool["metadata"]["name"], pool["metadata"]["namespace"], pool["spec"]["replicas"]
    latencies, warm_hits = [], 0
    for i in range(count):
        wait_for("warm pool refill", lambda: len(env.ready_pool_sandboxes(name, namespace)) >= replicas, timeout=180)
        warm = {s["metadata"]["name"] for s in env.ready_pool_sandboxes(name, namespace)}
        claim_name = f"bench-warm-{i}"
        claim = {"apiVersion": EXTENSIONS, "kind": "SandboxClaim", "metadata": {"name": claim_name, "namespace": namespace},
                 "spec": {"warmPoolRef": {"name": name}}}
        seconds, bound = _until(env.kube, EXTENSIONS, "SandboxClaim", namespace, claim_name,
                                lambda claim=claim: env.kube.create(claim), _claim_bound, timeout=180)
        latencies.append(seconds)
        warm_hits += bound["status"]["sandbox"]["name"] in warm
        env.kube.delete(EXTENSIONS, "SandboxClaim", claim_name, namespace)
    return latencies, warm_hits


def cold_sandboxes(env: WarmPoolEnv, count: int) -> list[float]:
    template = env.first("SandboxTemplate")
    namespace = template["metadata"]["namespace"]
    latencies = []
    for i in range(count):
        sandbox_name = f"bench-cold-{i}"
        sandbox = {"apiVersion": SANDBOXES, "kind": "Sandbox", "metadata": {"name": sandbox_name, "namespace": namespace},
                   "spec": {"podTemplate": template["spec"]["podTemplate"]}}
        seconds, _ = _until(env.kube, SANDBOXES, "Sandbox", namespace, sandbox_name,
                            lambda sandbox=sandbox: env.kube.create(sandbox), lambda s: is_true(s, "Ready"), timeout=180)
        latencies.append(seconds)
        env.kube.delete(SANDBOXES, "Sandbox", sandbox_name, namespace)
        wait_for("cold sandbox pod collected", lambda name=sandbox_name: not env.kube.exists("v1", "Pod", name, namespace),
                 timeout=120)
    return latencies


def _gateway_client(env: WarmPoolEnv, namespace: str, reach_pods: bool = False) -> SandboxClient:
    """The official client on the token of the ServiceAccount the dev stack binds in `namespace`;
    `reach_pods`: it talks to a sandbox at its pod IP (the e2e node's bridge routes there)."""
    binding = next(m for m in env.manifests if m["kind"] == "RoleBinding" and m["metadata"]["namespace"] == namespace
                   and m["roleRef"]["name"] == "sandbox-claimer")
    identity = gateway_identity(env.plane, namespace, binding["subjects"][0]["name"])
    connection = SandboxInClusterConnectionConfig(server_port=8888) if reach_pods else None
    return SandboxClient(connection_config=connection, api_client=identity.api_client())


def official_claims(env: WarmPoolEnv, count: int, cold: bool, reach_pods: bool = False) -> tuple[list[float], int, int]:
    """create_sandbox() wall time as the gateway; warm on the dev pool or cold on an empty one.
    Returns (latencies, warm hits, sandboxes whose port answered GET /healthz with "ok")."""
    pool = env.first("SandboxWarmPool")
    name, namespace, replicas = pool["metadata"]["name"], pool["metadata"]["namespace"], pool["spec"]["replicas"]
    if cold:  # the platform team's empty pool over the same template (the gateway may not create pools)
        env.kube.apply({"apiVersion": EXTENSIONS, "kind": "SandboxWarmPool",
                        "metadata": {"name": COLD_POOL, "namespace": namespace},
                        "spec": {"replicas": 0, "sandboxTemplateRef": pool["spec"]["sandboxTemplateRef"]}})
    client = _gateway_client(env, namespace, reach_pods)
    latencies, warm_hits, answered = [], 0, 0
    for _ in range(count):
        wait_for("warm pool refill", lambda: len(env.ready_pool_sandboxes(name, namespace)) >= replicas, timeout=180)
        warm = {s["metadata"]["name"] for s in env.ready_pool_sandboxes(name, namespace)}
        started = time.perf_counter()
        sandbox = client.create_sandbox(warmpool=COLD_POOL if cold else name, namespace=namespace,
                                        sandbox_ready_timeout=60)
        latencies.append(time.perf_counter() - started)
        warm_hits += sandbox.sandbox_id in warm
        if reach_pods:
            answered += sandbox.connector.send_request("GET", "healthz", timeout=10).text.strip() == "ok"
        client.delete_sandbox(sandbox.claim_name, namespace=namespace)
        wait_for("claimed sandbox's pod collected",
                 lambda s=sandbox.sandbox_id: not env.kube.exists("v1", "Pod", s, namespace), timeout=120)
    return latencies, warm_hits, answered


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return (f"{label:<44} n={len(ms):<4} p50={cuts[49]:8.1f} ms  p90={cuts[89]:8.1f} ms  p99={cuts[98]:8.1f} ms  "
            f"min={ms[0]:7.1f} ms  max={ms[-1]:8.1f} ms  mean={statistics.fmean(ms):8.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims", type=int, default=50, help="warm claims to time (default 50)")
    parser.add_argument("--cold", type=int, default=50, help="cold starts to time (default 50)")
    parser.add_argument("--pod-start-seconds", type=float, default=0.0,
                        help="simulated image pull + container start per pod (default 0: control-plane cost only)")
    parser.add_argument("--client", choices=("both", "e2e", "official"), default="both",
                        help="e2e: this project's REST client as admin; official: k8s-agent-sandbox as the gateway")
    parser.add_argument("--real-node", action="store_true",
                        help="real pod starts on the e2e node (containerd + runc + kubelet; root only) instead of "
                             "the fake kubelet")
    args = parser.parse_args(argv)
    reason = missing_reason("etcd", "kube-apiserver", "agent-sandbox-controller")
    if args.real_node:
        reason = "; ".join(r for r in (reason, node_missing_reason()) if r) or None
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    lines = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="claim-latency-")))
        if args.real_node:
            env: WarmPoolEnv = stack.enter_context(node_env(workdir))
            env.apply()
        else:
            env = stack.enter_context(warm_pool_env(workdir, pod_start_seconds=args.pod_start_seconds))
        pool = env.first("SandboxWarmPool")
        wait_for("warm pool full", lambda: len(env.ready_pool_sandboxes(pool["metadata"]["name"],
                                                                      pool["metadata"]["namespace"])) >= pool["spec"]["replicas"],
                 timeout=180)
        if args.client in ("both", "e2e"):
            warm, hits = warm_claims(env, args.claims)
            cold = cold_sandboxes(env, args.cold)
            lines += ["e2e REST client, as admin:",
                      summary(f"  warm SandboxClaim ({hits}/{len(warm)} warm)", warm),
                      summary("  cold Sandbox create", cold),
                      f"  cold p50 / warm p50 = {statistics.median(cold) / statistics.median(warm):.2f}"]
        if args.client in ("both", "official"):
            warm, hits, warm_answers = official_claims(env, args.claims, cold=False, reach_pods=args.real_node)
            cold, cold_hits, cold_answers = official_claims(env, args.cold, cold=True, reach_pods=args.real_node)
            lines += [f"k8s-agent-sandbox {version('k8s-agent-sandbox')} as the gateway (its ServiceAccount token only):",
                      summary(f"  warm create_sandbox ({hits}/{len(warm)} warm)", warm),
                      summary(f"  cold create_sandbox, pool of 0 ({cold_hits}/{len(cold)} warm)", cold),
                      f"  cold p50 / warm p50 = {statistics.median(cold) / statistics.median(warm):.2f}"]
            if args.real_node:
                lines.append(f"  port 8888 answered GET /healthz: warm {warm_answers}/{len(warm)}, "
                             f"cold {cold_answers}/{len(cold)}")
    kubelet = ("a real node (containerd + runc + kubelet, node stack: readiness probe on /healthz)" if args.real_node
               else f"fake kubelet (pod start {args.pod_start_seconds:g} s)")
    print(f"claim-to-bound latency: agent-sandbox controller out of cluster, {kubelet}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
