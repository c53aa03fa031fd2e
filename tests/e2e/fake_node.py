"""Stand-ins for the parts of a cluster that a node-less control plane lacks.

`FakeKubelet` registers one Node, binds every pending pod to it (the scheduler's
job) and reports it Running and Ready through the pod's status subresource (the
kubelet's job), so controllers see pods come up. Nothing runs: the pod IPs are
made-up loopback addresses, never connected to.

`FakeControllerManager` does the chores of kube-controller-manager that the tests
depend on: the `default` ServiceAccount in each namespace (the ServiceAccount
admission plugin rejects pods without it), ResourceQuota status (the quota admission
plugin rejects pods while a quota's status is unknown, and usage must fall again
when pods go), garbage collection of objects whose owner is gone, finishing
foreground deletions (pulumi-kubernetes deletes with propagation Foreground, which
waits for the garbage collector) and finalizing deleted namespaces.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .kube import ApiError, Kube, Manifest

NODE = "e2e-node-1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Loop(threading.Thread):
    """A daemon thread that runs `step` every `interval` seconds until stopped, surviving
    transient API errors. The pause is a wait on the stop event, so stopping is immediate."""

    def __init__(self, name: str, step: Callable[[], None], interval: float = 0.0, settle: float = 0.0):
        """`interval`: the most time between two steps; `wake` cuts it short, but never to less
        than `settle` (a burst of wake-ups is one step, not one each)."""
        super().__init__(name=name, daemon=True)
        self._step, self._halt, self._wake = step, threading.Event(), threading.Event()
        self._interval, self._settle = interval, settle
        self.errors: list[str] = []

    @property
    def stopping(self) -> bool:
        return self._halt.is_set()

    def wake(self) -> None:
        """Step now instead of at the end of the interval."""
        self._wake.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._step()
            except Exception as error:  # keep going: the tests check outcomes, not this thread
                self.errors.append(repr(error))
                self._halt.wait(0.2)
            self._halt.wait(self._settle)
            self._wake.wait(max(self._interval - self._settle, 0))
            self._wake.clear()

    def halt(self) -> None:
        """Ask the loop to end after its current step (`stop` also waits for it)."""
        self._halt.set()
        self._wake.set()

    def stop(self) -> None:
        self.halt()
        self.join(timeout=10)


class FakeKubelet:
    def __init__(self, kube: Kube, node: str = NODE, start_seconds: float = 0.0):
        """`start_seconds`: how long a bound pod takes to report Running/Ready, standing in
        for image pull and container start (0: at once)."""
        self.kube, self.node, self.start_seconds = kube, node, start_seconds
        self._ips: dict[str, str] = {}
        self._starting: set[str] = set()
        self._loop = _Loop("fake-kubelet", self._watch_once)
        self._stopping = False
        self._watch: Any = None  # the open Pod watch, ended on exit

    def __enter__(self) -> FakeKubelet:
        self._register_node()
        self._loop.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        # The watch blocks in a read until its next event: end it now, or the loop outlives
        # its join and the API server waits for the open watch before it stops.
        if self._watch is not None:
            _shut(self._watch)
        self._loop.stop()

    def _opened(self, response: Any) -> None:
        self._watch = response
        if self._stopping:  # opened after __exit__ looked
            _shut(response)

    def _register_node(self) -> None:
        with contextlib.suppress(ApiError):
            self.kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": self.node, "labels": {"kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux"}}})
        self.kube.patch_status("v1", "Node", self.node, None, {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake kubelet",
                            "lastHeartbeatTime": _now(), "lastTransitionTime": _now()}],
        })

    def _watch_once(self) -> None:
        listing = self.kube.list("v1", "Pod")
        for pod in listing["items"]:
            self.handle(pod)
        for event, pod in self.kube.watch("v1", "Pod", resource_version=listing["metadata"]["resourceVersion"],
                                          timeout=60, opened=self._opened):
            if self._stopping:
                return
            if event in ("ADDED", "MODIFIED"):
                self.handle(pod)

    def _ip(self, uid: str) -> str:
        if uid not in self._ips:
            n = len(self._ips) + 1
            self._ips[uid] = f"127.1.{n // 250}.{n % 250 + 1}"
        return self._ips[uid]

    def handle(self, pod: Manifest) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
        try:
            if meta.get("deletionTimestamp"):
                if spec.get("nodeName") == self.node:  # confirm termination, as the kubelet does
                    self.kube.delete("v1", "Pod", meta["name"], meta["namespace"], grace_period=0)
            elif not spec.get("nodeName"):
                self.kube.bind(pod, self.node)
            elif spec["nodeName"] == self.node and status.get("phase") != "Running":
                if self.start_seconds <= 0:
                    self._start(pod)
                elif meta["uid"] not in self._starting:
                    self._starting.add(meta["uid"])
                    threading.Timer(self.start_seconds, self._start_quietly, args=(pod,)).start()
        except ApiError as error:
            if error.status not in (404, 409):  # gone or already bound/changed: the next event decides
                raise

    def _start(self, pod: Manifest) -> None:
        self.kube.patch_status("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"], self._running(pod))

    def _start_quietly(self, pod: Manifest) -> None:
        with contextlib.suppress(ApiError):  # deleted before it "started"
            self._start(pod)

    def _running(self, pod: Manifest) -> dict:
        ip, now = self._ip(pod["metadata"]["uid"]), _now()
        containers = pod["spec"]["containers"]
        return {
            "phase": "Running", "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now, "qosClass": "Burstable",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": now, "lastProbeTime": None}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [{
                "name": c["name"], "image": c["image"], "imageID": "", "ready": True, "started": True,
                "restartCount": 0, "containerID": f"fake://{pod['metadata']['uid']}/{c['name']}",
                "state": {"running": {"startedAt": now}},
            } for c in containers],
        }


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity(value: str) -> Decimal:
    for suffix, factor in {**_BINARY, **_DECIMAL}.items():
        if value.endswith(suffix):
            return Decimal(value[: -len(suffix)]) * factor
    return Decimal(value)


def _format(resource: str, amount: Decimal) -> str:
    if resource.endswith("cpu"):
        return f"{int(amount * 1000)}m"
    return str(int(amount))


QUOTA_RESOURCES = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def pod_usage(pods: list[Manifest], hard: dict[str, str]) -> dict[str, str]:
    """What the quota controller would report as `used` for these pods."""
    live = [p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]
    used: dict[str, str] = {}
    for resource in hard:
        if resource == "pods":
            used[resource] = str(len(live))
        elif resource in QUOTA_RESOURCES:
            section, name = resource.split(".")
            total = sum((quantity(c.get("resources", {}).get(section, {}).get(name, "0"))
                         for p in live for c in p["spec"]["containers"]), Decimal(0))
            used[resource] = _format(resource, total)
    return used


def _shut(response: Any) -> None:
    """End a streaming response from another thread: shutting the socket down wakes the read."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: already closed
        response.raw.shutdown()


class FakeControllerManager:
    GC_KINDS = (("agents.x-k8s.io/v1beta1", "Sandbox"), ("v1", "Pod"), ("v1", "Service"))
    OWNER_KINDS = (("extensions.agents.x-k8s.io/v1beta1", "SandboxClaim"),
                   ("extensions.agents.x-k8s.io/v1beta1", "SandboxWarmPool"), *GC_KINDS)
    # What the namespace chores (`step`) read: a change to any of these wakes them.
    CHORE_KINDS = (("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ResourceQuota"), *OWNER_KINDS)
    RESYNC = 5.0
    """Seconds between chores when no watch reported a change (kube-controller-manager's
    informers resync too): a safety net, every change wakes them at once."""

    def __init__(self, kube: Kube, namespaces: list[str], kinds: list[tuple[str, str]] = (), interval: float = 0.5):
        """`kinds`: (apiVersion, kind) of the objects whose foreground deletion should complete.
        `interval`: how soon a failed step, list or watch is tried again."""
        self.kube, self.namespaces = kube, namespaces
        self.kinds = sorted(set(kinds) | set(self.GC_KINDS)) if kinds else []
        # Driven by watches, as kube-controller-manager's controllers are by informers: the chores
        # run when something they read changed, and finishing a foreground deletion waits for no
        # poll (a `pulumi destroy` deletes ~130 objects in the foreground, each waiting for this).
        # Polling instead (every kind and namespace each 0.5 s, ~70 requests a second) cost a
        # plane's API server and this process a sixth of a core each for as long as a test ran.
        self._loop = _Loop("fake-controller-manager", self.step, self.RESYNC, settle=0.2)
        # Woken by the informers; the interval retries an owner whose dependents are still going.
        self._foreground = _Loop("fake-gc-foreground", self._finish_foreground_deletions, interval)
        # The garbage collector's view of `kinds`: every object's metadata, from a list, then a watch.
        self._seen: dict[tuple[str, str], dict[str, Manifest]] = {kind: {} for kind in self.kinds}
        self._seen_lock = threading.Lock()
        self._watches: set[Any] = set()  # the informers' open watch responses
        # Each with its own client: a watch holds its connection for as long as it runs.
        self._informers = [_Loop(f"fake-informer-{kind}", functools.partial(self._inform, (api_version, kind),
                                                                            kube.another()), interval)
                           for api_version, kind in sorted(set(self.kinds) | set(self.CHORE_KINDS))]

    def __enter__(self) -> FakeControllerManager:
        self.step()
        self._loop.start()
        for informer in self._informers:
            informer.start()
        if self.kinds:
            self._foreground.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.halt()  # the informers' stop signal too
        with self._seen_lock:
            watches = list(self._watches)
        for response in watches:  # a watch blocks in a read until its next event: end it now
            _shut(response)
        for loop in (*self._informers, self._foreground, self._loop):
            if loop.is_alive():
                loop.stop()

    def _opened(self, response: Any) -> None:
        with self._seen_lock:
            self._watches.add(response)
            if self._loop.stopping:  # opened after __exit__ shut the others
                _shut(response)

    def _inform(self, key: tuple[str, str], kube: Kube) -> None:
        """List one kind's metadata, then follow its watch until the server ends it (the loop
        starts over with a new list); wake whoever reads that kind. A kind not served yet (its
        CRD comes with the stack) is an ApiError: the loop tries again after its interval."""
        chores, collected = key in self.CHORE_KINDS, key in self._seen
        listing = kube.list_metadata(*key)
        if collected:
            with self._seen_lock:
                self._seen[key] = {item["metadata"]["uid"]: item for item in listing["items"]}
            self._foreground.wake()
        if chores:
            self._loop.wake()
        events = kube.watch_metadata(*key, resource_version=listing["metadata"]["resourceVersion"], timeout=60,
                                     opened=self._opened)
        for event, item in events:
            if self._loop.stopping:
                break
            if chores:
                self._loop.wake()
            if not collected:
                continue
            with self._seen_lock:
                if event == "DELETED":
                    self._seen[key].pop(item["metadata"]["uid"], None)
                elif event in ("ADDED", "MODIFIED"):
                    self._seen[key][item["metadata"]["uid"]] = item
            if event == "DELETED" or "foregroundDeletion" in item["metadata"].get("finalizers", []):
                self._foreground.wake()
        with self._seen_lock:
            self._watches = {response for response in self._watches if not response.raw.closed}

    def step(self) -> None:
        for namespace in self.namespaces:
            try:
                state = self.kube.get("v1", "Namespace", namespace)
            except ApiError as error:
                if error.status == 404:
                    continue
                raise
            if state["metadata"].get("deletionTimestamp"):
                self._delete_namespace(state)
                continue
            self._service_account(namespace)
            self._quota(namespace)
            self._collect_garbage(namespace)

    def _delete_namespace(self, namespace: Manifest) -> None:
        name = namespace["metadata"]["name"]
        for pod in self.kube.list("v1", "Pod", name)["items"]:
            self.kube.delete("v1", "Pod", pod["metadata"]["name"], name, grace_period=0)
        self.kube.finalize_namespace(namespace)

    def _finish_foreground_deletions(self) -> None:
        """Delete the dependents of an object deleted in the foreground, then drop its finalizer."""
        dependents: dict[str, list[tuple[str, str, Manifest]]] = {}
        doomed: list[tuple[str, str, Manifest]] = []
        with self._seen_lock:
            seen = [(api_version, kind, list(items.values())) for (api_version, kind), items in self._seen.items()]
        for api_version, kind, items in seen:
            for item in items:
                for ref in item["metadata"].get("ownerReferences", []):
                    dependents.setdefault(ref["uid"], []).append((api_version, kind, item))
                if "foregroundDeletion" in item["metadata"].get("finalizers", []):
                    doomed.append((api_version, kind, item))
        for api_version, kind, item in doomed:
            meta = item["metadata"]
            waiting = dependents.get(meta["uid"], [])
            for dep_version, dep_kind, dependent in waiting:
                self.kube.delete(dep_version, dep_kind, dependent["metadata"]["name"],
                                 dependent["metadata"].get("namespace"), grace_period=0 if dep_kind == "Pod" else None)
            if not waiting:
                rest = [f for f in meta["finalizers"] if f != "foregroundDeletion"]
                with contextlib.suppress(ApiError):  # gone or changed meanwhile: next step
                    self.kube.patch(api_version, kind, meta["name"], meta.get("namespace"),
                                    {"metadata": {"finalizers": rest or None, "resourceVersion": meta["resourceVersion"]}})

    def _service_account(self, namespace: str) -> None:
        if not self.kube.exists("v1", "ServiceAccount", "default", namespace):
            with contextlib.suppress(ApiError):
                self.kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                  "metadata": {"name": "default", "namespace": namespace}})

    def _quota(self, namespace: str) -> None:
        pods = self.kube.list("v1", "Pod", namespace)["items"]
        for quota in self.kube.list("v1", "ResourceQuota", namespace)["items"]:
            hard = quota["spec"].get("hard", {})
            status = {"hard": hard, "used": pod_usage(pods, hard)}
            if quota.get("status") != status:
                with contextlib.suppress(ApiError):  # a concurrent admission update wins; retry next step
                    self.kube.patch_status("v1", "ResourceQuota", quota["metadata"]["name"], namespace, status)

    def _collect_garbage(self, namespace: str) -> None:
        live: set[str] = set()
        objects: list[tuple[str, str, Manifest]] = []
        for api_version, kind in self.OWNER_KINDS:
            try:
                items = self.kube.list_metadata(api_version, kind, namespace)["items"]
            except ApiError as error:
                if error.status == 404:  # CRDs not installed (yet)
                    continue
                raise
            live.update(item["metadata"]["uid"] for item in items)
            if (api_version, kind) in self.GC_KINDS:
                objects += [(api_version, kind, item) for item in items]
        for api_version, kind, item in objects:
            refs = item["metadata"].get("ownerReferences", [])
            if refs and not any(ref["uid"] in live for ref in refs):
                self.kube.delete(api_version, kind, item["metadata"]["name"], namespace,
                                 grace_period=0 if kind == "Pod" else None)
