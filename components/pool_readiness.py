"""PoolReadiness: the bounded wait of `pulumi up` for a `waitForReady` warm pool.

A Pulumi dynamic resource, a child of the WarmPool component that depends on the pool. Its
create (and update, when the pool's size or bound changes) polls the pool and its pods with
the same kubeconfig and context as the stack's Kubernetes provider, and returns once the pool
reports its replicas ready. It fails, in one message, as soon as a pod is stuck in a failing
state (components/readiness.py says which), or when `readyTimeout` has passed. Preview never
calls it: the engine only checks and diffs its inputs then, so nothing reads the cluster.

Why not the Kubernetes provider's own await (`pulumi.com/waitFor` on the pool): it sees only
`readyReplicas`, which agent-sandbox leaves at 0 for a pool whose pods can never start, so it
waits out its timeout (10 minutes by default) and then says only that it timed out. And a
failure next to it would not end `up` sooner: the engine lets a running create finish.

The provider is stored in the stack's state by reference to this module (dill pickles the
class by its import path), so `components.pool_readiness.PoolReadinessProvider` must stay
importable under this name for existing stacks to update and delete their gates.

From the component package (a WarmPool declared in a YAML, TypeScript, ... program) the same
wait is `PackagePoolReadiness`, a resource of the package's own provider: the engine starts a
Python dynamic provider with the *program's* runtime options (its virtualenv), and a program
in another language has none, so the pickled provider could not even be loaded there. The
package's provider (sandbox_infra/package.py) serves the type with `wait` and `changed` below,
as the dynamic provider does: the same inputs, diff, polling and messages.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from .manifests.common import EXTENSIONS_GROUP, SANDBOX_GROUP
from .readiness import Meta, PoolWatch, Verdict, pool_pods

POLL_SECONDS = 2.0
# Inputs whose change means the wait must run again (never the credentials: rotating a
# kubeconfig does not change what is deployed).
WATCHED = ("namespace", "pool", "template", "replicas", "apiVersion", "timeoutSeconds")


class PoolNotReady(Exception):
    """The pool did not become ready: its message is all the engine shows."""


# The dynamic provider host prints `traceback.format_exc()` for any error; the message is the
# whole story here, so it goes out as `PoolNotReady: <message>`, without a stack.
PoolNotReady.__module__ = "builtins"


class Cluster:
    """GETs with the official client's kubeconfig loader (certificates, tokens, exec plugins),
    as the Kubernetes provider reads the same kubeconfig: a path or its contents, else the
    ambient $KUBECONFIG or ~/.kube/config; `context` else the current one."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        import yaml
        from kubernetes import config

        if kubeconfig and not os.path.isfile(os.path.expanduser(kubeconfig)):
            self.api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context,
                                                          persist_config=False)
        else:
            path = os.path.expanduser(kubeconfig) if kubeconfig else None
            self.api = config.new_client_from_config(path, context=context, persist_config=False)

    def get(self, path: str) -> Meta | None:
        request = self.api.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                           auth_settings=["BearerToken"])
        response = self.api.call_api(*request, _request_timeout=10)
        response.read()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise OSError(f"GET {path}: HTTP {response.status} {response.reason or ''}".rstrip())
        return json.loads(response.data)


def look(cluster: Cluster, props: dict[str, Any]) -> tuple[Meta | None, list[Meta]]:
    """The pool and its pods, as the cluster has them now."""
    namespace, version = props["namespace"], props["apiVersion"]
    pool = cluster.get(f"/apis/{EXTENSIONS_GROUP}/{version}/namespaces/{namespace}/sandboxwarmpools/{props['pool']}")
    if pool is None:
        return None, []
    sandboxes = (cluster.get(f"/apis/{SANDBOX_GROUP}/{version}/namespaces/{namespace}/sandboxes") or {}).get("items", [])
    pods = (cluster.get(f"/api/v1/namespaces/{namespace}/pods") or {}).get("items", [])
    return pool, pool_pods(pool, sandboxes, pods)


def wait_for_pool(props: dict[str, Any], read: Callable[[], tuple[Meta | None, list[Meta]]],
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                  poll: float = POLL_SECONDS) -> Verdict:
    """Poll `read` until the pool is ready or the watch fails; a read that raises counts as
    "cannot read" until the timeout (an API server restarting must not fail the wait)."""
    watch = PoolWatch(props["namespace"], props["pool"], props["template"], int(props["replicas"]),
                      float(props["timeoutSeconds"]), started=clock())
    while True:
        try:
            pool, pods = read()
            verdict = watch.observe(pool, pods, clock())
        except Exception as error:  # any client or API error: read again until the bound
            verdict = watch.observe(None, [], clock(), error=f"{type(error).__name__}: {str(error)[:300]}")
        if verdict.state != "waiting":
            return verdict
        sleep(poll)


def wait(props: dict[str, Any]) -> dict[str, Any]:
    """Wait for the pool `props` names; raises PoolNotReady. Returns the outputs: what was
    waited for, never the credentials."""
    cluster = Cluster(props.get("kubeconfig") or None, props.get("context") or None)
    verdict = wait_for_pool(props, lambda: look(cluster, props))
    if verdict.state == "failed":
        raise PoolNotReady(verdict.message)
    return {key: props[key] for key in WATCHED}


def changed(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """The inputs whose change means waiting again."""
    return [key for key in WATCHED if olds.get(key) != news.get(key)]


class PoolReadinessProvider(dynamic.ResourceProvider):
    def _wait(self, props: dict[str, Any]) -> dict[str, Any]:
        try:
            return wait(props)
        except PoolNotReady:
            sys.tracebacklimit = 0  # the host formats the error after we return; see PoolNotReady
            raise

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=f"{props['namespace']}/{props['pool']}", outs=self._wait(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs=self._wait(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return dynamic.DiffResult(changes=bool(changed(olds, news)), replaces=[], delete_before_replace=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing in the cluster belongs to the wait."""


@dataclass(frozen=True)
class PoolReadinessArgs:
    namespace: str
    pool: str
    template: str
    replicas: int
    api_version: str
    timeout_seconds: float
    kubeconfig: pulumi.Input[str] | None = None
    """The Kubernetes provider's kubeconfig (a path or the contents, as a secret); None: the ambient one."""
    context: str | None = None


def _props(args: PoolReadinessArgs) -> dict[str, Any]:
    return {"namespace": args.namespace, "pool": args.pool, "template": args.template, "replicas": args.replicas,
            "apiVersion": args.api_version, "timeoutSeconds": args.timeout_seconds, "kubeconfig": args.kubeconfig,
            "context": args.context}


class PoolReadiness(dynamic.Resource, module="sandbox-infra", name="PoolReadiness"):
    """Succeeds once the warm pool reports its replicas ready (see the module's docstring)."""

    def __init__(self, name: str, args: PoolReadinessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PoolReadinessProvider(), name, _props(args), opts)


# --- the same wait, served by the component package's provider ---------------------------

PACKAGE_TYPE = "sandbox-infra:index:PoolReadiness"
# Set by the package's provider around a component's construction (sandbox_infra/package.py):
# a WarmPool built there registers PackagePoolReadiness instead of the dynamic resource.
in_package: contextvars.ContextVar[bool] = contextvars.ContextVar("in_package", default=False)


class PackagePoolReadiness(pulumi.CustomResource):
    """The wait as a resource of the component package's provider (see the module's docstring)."""

    def __init__(self, name: str, args: PoolReadinessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = _props(args)
        if args.kubeconfig is not None:  # a kubeconfig's contents are a credential: never plain in state
            props["kubeconfig"] = pulumi.Output.secret(args.kubeconfig)
        super().__init__(PACKAGE_TYPE, name, props, opts)


def pool_readiness(name: str, args: PoolReadinessArgs, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """The wait for a WarmPool: the dynamic resource in a Python program (its type and URN are in
    users' state), the package's resource where the package's provider builds the WarmPool."""
    return (PackagePoolReadiness if in_package.get() else PoolReadiness)(name, args, opts)
