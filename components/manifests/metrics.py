"""The agent-sandbox controller's metrics and how to select one pool's claims, per release.

Read at the v0.4.6 and v0.5.6 tags of kubernetes-sigs/agent-sandbox
(`internal/metrics/metrics.go`, `sandbox_collector.go`, `extensions/controllers/
sandboxclaim_controller.go`):

- `agent_sandbox_claim_creation_total{namespace, sandbox_template, launch_type,
  warmpool_name, pod_condition[, created_by]}` counts a warm claim at adoption and a
  cold claim when its Sandbox is created.
  - v0.5.6: `warmpool_name` is the pool of a warm claim, and the claim's own
    `spec.warmPoolRef.name` (required) for a cold one: one selector per pool.
  - v0.4.6: a cold claim carries `warmpool_name="none"`, and claims name a template,
    not a pool. A pool's cold claims are those of its template in its namespace with
    `warmpool_name="none"` (with two pools of one template in a namespace, each sees
    the other's cold claims too; claims with `warmpool: none` count as misses).
- Latency histograms (milliseconds) carry only `launch_type, sandbox_template`.
- `agent_sandboxes` is computed at each scrape and only emits label sets whose count is
  above 0: an empty pool has no series. `owned_by` exists from v0.5.6 on.
"""

from __future__ import annotations

CLAIM_COUNTER = "agent_sandbox_claim_creation_total"
CONTROLLER_LATENCY = "agent_sandbox_claim_controller_startup_latency_ms"
CLIENT_LATENCY = "agent_sandbox_client_claim_startup_latency_ms"  # v0.5.6 only
CREATION_LATENCY = "agent_sandbox_creation_latency_ms"
SANDBOXES = "agent_sandboxes"
RECONCILE_TOTAL = "controller_runtime_reconcile_total"
RECONCILE_ERRORS = "controller_runtime_reconcile_errors_total"
UP = "up"

# Every name the rules and dashboards may read from the controller (tests hold them to it).
CONTROLLER_METRICS = frozenset({
    CLAIM_COUNTER, f"{CONTROLLER_LATENCY}_bucket", f"{CONTROLLER_LATENCY}_sum", f"{CONTROLLER_LATENCY}_count",
    f"{CLIENT_LATENCY}_bucket", f"{CREATION_LATENCY}_sum", f"{CREATION_LATENCY}_count", SANDBOXES,
    RECONCILE_TOTAL, RECONCILE_ERRORS, UP,
})

# The histograms' buckets (milliseconds), the same in both releases.
LATENCY_BUCKETS_MS = (100, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 5000, 10000, 30000, 60000, 120000, 240000)


def _labels(**labels: str) -> str:
    """Equality matchers; a value starting with `~` is a regular expression (`=~`)."""
    parts = [f'{k}=~"{v[1:]}"' if v.startswith("~") else f'{k}="{v}"' for k, v in labels.items()]
    return "{" + ",".join(parts) + "}"


def has_pool_labels(version: str) -> bool:
    """Whether `agent_sandboxes` says which sandboxes a pool owns (owned_by, v0.5.6 on)."""
    return version != "v0.4.6"


def has_client_latency(version: str) -> bool:
    return version != "v0.4.6"


def pool_claims(version: str, namespace: str, pool: str, template: str) -> str:
    """Every claim of the pool, warm and cold."""
    if version == "v0.4.6":
        return CLAIM_COUNTER + _labels(namespace=namespace, sandbox_template=template, warmpool_name=f"~{pool}|none")
    return CLAIM_COUNTER + _labels(namespace=namespace, warmpool_name=pool)


def pool_warm_ready_claims(namespace: str, pool: str) -> str:
    """Claims served by a ready warm sandbox of the pool (the SLI's good events)."""
    return CLAIM_COUNTER + _labels(namespace=namespace, warmpool_name=pool, launch_type="warm", pod_condition="ready")


def pool_ready_sandboxes(namespace: str, template: str) -> str:
    """Ready sandboxes waiting in pools of `template` in `namespace` (v0.5.6 on)."""
    return SANDBOXES + _labels(namespace=namespace, sandbox_template=template, owned_by="SandboxWarmPool",
                               ready_condition="true")


def warm_ready_sandboxes(namespace: str, template: str) -> str:
    """v0.4.6 has no owned_by: ready warm-launched sandboxes (waiting in the pool or adopted)."""
    return SANDBOXES + _labels(namespace=namespace, sandbox_template=template, launch_type="warm",
                               ready_condition="true")


def latency_buckets(metric: str, template: str) -> str:
    return f"{metric}_bucket" + _labels(sandbox_template=template)


def cold_creation(suffix: str, namespace: str, template: str) -> str:
    return f"{CREATION_LATENCY}_{suffix}" + _labels(namespace=namespace, launch_type="cold", sandbox_template=template)
