"""Is a warm pool coming up, stuck, or ready? Pure functions over the pool's and its pods' JSON.

`pulumi up` waits for a `waitForReady` pool (components/pool_readiness.py polls the cluster and
feeds what it reads to `PoolWatch`). agent-sandbox reports only a count of ready replicas, so
a pool whose pods can never start (an image that runs as root under runAsNonRoot, a tag that
does not exist, a crashing entrypoint) would look like a slow one until a timeout. The kubelet
says more on each pod: a container waiting in a *failing* reason has been tried and will stay
broken until something changes. Such a state fails the wait once it has held for
`FAIL_AFTER_SECONDS`, in one message naming the pool, its template, the pod and the kubelet's
reason and message. Progress (ContainerCreating, an image still pulling, a readiness probe not
yet passing) and Unschedulable (a cluster autoscaler may be adding a node) only wait, and
are what the timeout message reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

# Container waiting reasons the kubelet sets after a failed attempt, which it keeps retrying
# (with back-off) without a chance of success until the image, the template or the node changes.
FAILING_REASONS = frozenset({
    "CreateContainerConfigError",  # e.g. runAsNonRoot and an image whose user is root; a missing Secret key
    "CreateContainerError",
    "RunContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImageInspectError",
    "RegistryUnavailable",
    "CrashLoopBackOff",
    "PreStartHookError",
    "PostStartHookError",
})

# A failing state must hold this long before the wait fails: a registry blip clears at the
# kubelet's next pull (10 s back-off), a Secret the same `up` is still creating appears within
# it. Anything that still fails after that is reported, not waited out.
FAIL_AFTER_SECONDS = 20.0

Meta = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """Why one pod (or one of its containers) is not ready."""

    pod: str
    container: str | None
    reason: str
    message: str
    failing: bool
    """The kubelet tried and failed (FAILING_REASONS); else the pod is still on its way."""

    @property
    def key(self) -> tuple[str, str | None]:
        return self.pod, self.container

    def describe(self) -> str:
        where = f"pod {self.pod}" + (f" container {self.container}" if self.container else "")
        return f"{where}: {self.reason}" + (f": {self.message}" if self.message else "")


def _one_line(text: str | None, limit: int = 300) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _container_problem(pod: str, status: Meta, init: bool) -> Problem | None:
    name = status.get("name", "?") + (" (init)" if init else "")
    state = status.get("state") or {}
    if "waiting" in state:
        waiting = state["waiting"] or {}
        reason = waiting.get("reason") or "Waiting"
        message = _one_line(waiting.get("message"))
        last = (status.get("lastState") or {}).get("terminated")
        if reason == "CrashLoopBackOff" and last:  # the back-off message says less than how it ended
            ended = f"last exit code {last.get('exitCode')}" + (f" ({last['reason']})" if last.get("reason") else "")
            message = "; ".join(filter(None, [ended, _one_line(last.get("message")), message]))
        return Problem(pod, name, reason, message, reason in FAILING_REASONS)
    if "terminated" in state and init and (state["terminated"] or {}).get("exitCode", 0) != 0:
        ended = state["terminated"] or {}
        return Problem(pod, name, ended.get("reason") or "Error",
                       _one_line(f"exit code {ended.get('exitCode')} {ended.get('message') or ''}"), False)
    if not status.get("ready", False) and not init and "running" in state:
        return Problem(pod, name, "NotReady", "running, readiness probe not passing yet", False)
    return None


def pod_problems(pod: Meta) -> list[Problem]:
    """What keeps one pod from being ready, most telling first; [] for a ready pod."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if status.get("phase") in ("Failed", "Succeeded"):
        return [Problem(name, None, status.get("reason") or status["phase"], _one_line(status.get("message")), False)]
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return [Problem(name, None, scheduled.get("reason") or "NotScheduled", _one_line(scheduled.get("message")), False)]
    problems = [p for s in status.get("initContainerStatuses") or [] if (p := _container_problem(name, s, True))]
    problems += [p for s in status.get("containerStatuses") or [] if (p := _container_problem(name, s, False))]
    if problems:
        return sorted(problems, key=lambda p: not p.failing)
    if (conditions.get("Ready") or {}).get("status") == "True":
        return []
    return [Problem(name, None, status.get("phase") or "Pending", "not scheduled to a node yet"
                    if scheduled is None else "waiting for its containers", False)]


def pool_pods(pool: Meta, sandboxes: Iterable[Meta], pods: Iterable[Meta]) -> list[Meta]:
    """The pool's pods: owned by one of the pool's Sandboxes (agent-sandbox v0.5) or by the pool itself."""
    def owned_by(obj: Meta, uids: set[str]) -> bool:
        return any(ref.get("uid") in uids for ref in obj.get("metadata", {}).get("ownerReferences") or [])

    pool_uid = {pool["metadata"]["uid"]}
    owners = pool_uid | {s["metadata"]["uid"] for s in sandboxes if owned_by(s, pool_uid)}
    return sorted((p for p in pods if owned_by(p, owners)), key=lambda p: p["metadata"]["name"])


def format_seconds(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 120 and seconds % 60 == 0 else f"{seconds:g} s"


@dataclass(frozen=True)
class Verdict:
    state: Literal["ready", "waiting", "failed"]
    message: str


@dataclass
class PoolWatch:
    """Successive observations of one pool, from `started` (a monotonic clock's seconds)."""

    namespace: str
    pool: str
    template: str
    replicas: int
    timeout: float
    started: float
    fail_after: float = FAIL_AFTER_SECONDS
    _failing_since: dict[tuple[str, str | None], float] = field(default_factory=dict, init=False, repr=False)

    @property
    def subject(self) -> str:
        return f"warm pool {self.namespace}/{self.pool} (template {self.template})"

    def observe(self, pool: Meta | None, pods: list[Meta], now: float, error: str | None = None) -> Verdict:
        """The verdict after one look at the cluster: the pool object (None: not found), its pods
        (pool_pods), and the error of a read that failed (the cluster is then not judged)."""
        ready = int(((pool or {}).get("status") or {}).get("readyReplicas") or 0)
        if pool is not None and error is None and ready >= self.replicas:
            return Verdict("ready", f"{self.subject}: {ready} of {self.replicas} replicas ready")
        problems = [] if error else [p for pod in pods for p in pod_problems(pod)]
        if error is None:  # a failed read says nothing about the pods: their clocks keep running
            failing = [p for p in problems if p.failing]
            self._failing_since = {p.key: self._failing_since.get(p.key, now) for p in failing}
        held = [p for p in problems if p.failing and now - self._failing_since[p.key] >= self.fail_after]
        if held:
            first = held[0]
            others = sorted({p.pod for p in held if p.reason == first.reason} - {first.pod})
            more = f" (and {len(others)} more of its pods: {first.reason})" if others else ""
            return Verdict("failed", f"{self.subject} cannot become ready: {first.describe()}{more}. "
                                     f"{ready} of {self.replicas} replicas ready; the kubelet keeps retrying, "
                                     f"so waiting longer would not help: fix the template or its image")
        state = self._state(ready, pool, problems, error)
        elapsed = now - self.started
        if elapsed >= self.timeout:
            return Verdict("failed", f"{self.subject} is not ready after {format_seconds(self.timeout)}: {state}. "
                                     f"If it only needs longer, raise the pool's readyTimeout (at most 1h)")
        return Verdict("waiting", f"{self.subject}: {state}")

    def _state(self, ready: int, pool: Meta | None, problems: list[Problem], error: str | None) -> str:
        if error:
            return f"cannot read it from the cluster: {error}"
        if pool is None:
            return "the SandboxWarmPool does not exist"
        state = f"{ready} of {self.replicas} replicas ready"
        if not problems:
            return state + "; no pod of the pool yet" if ready == 0 else state
        shown = "; ".join(p.describe() for p in problems[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        return f"{state}; {shown}{more}"
