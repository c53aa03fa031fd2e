"""Resource URNs are users' state: a refactor must not change one without an alias.

The URNs every shipped stack registers (plus variants that reach the components the
shipped stacks leave out: a bring-your-own agent-sandbox install and a KEDA-scaled pool)
were recorded in tests/urns/ before the components took their `(name, args, opts)`
shape. The program must still register each of them, or alias the new URN to it; a
URN that would change without an alias means the engine deletes and recreates a live
object (a namespace, a pool, a VM and its disk).

Record anew only for a deliberate change, with its alias and a note in the changelog:
`python -m tests.test_urns --record` adds the new URNs and keeps the old ones, which must
stay reachable through their aliases (issue 21: the bring-your-own agent-sandbox check moved
under the AgentSandbox component, its old top-level URN is an alias).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.specs import spec_from_config
from components.stack import deploy
from components.upstream import UpstreamLoader

from .conftest import stack_config
from .pulumi_harness import ClusterWithCrds, Registration, run_under_mocks

RECORDED = Path(__file__).parent / "urns"


def _external_install(config: dict[str, Any]) -> dict[str, Any]:
    config["agentSandbox"] = {**config.get("agentSandbox", {}), "install": "external"}
    return config


def _keda_pool(config: dict[str, Any]) -> dict[str, Any]:
    config["policy"] = {**config.get("policy", {}), "maxWarmPoolReplicas": 50}
    pool = config["warmPools"][0]
    pool.pop("replicas", None)
    pool["slo"] = {"claimRate": "30/min", "readyTime": "8s", "hitRatio": 0.99,
                   "autoscaling": {"engine": "keda", "minClaimRate": "5/min", "maxClaimRate": "120/min",
                                   "prometheusAddress": "http://prometheus.monitoring.svc:9090"}}
    return config


VARIANTS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "dev": ("dev", lambda c: c),
    "staging": ("staging", lambda c: c),
    "prod": ("prod", lambda c: c),
    "prod-us": ("prod-us", lambda c: c),
    "dev-external-install": ("dev", _external_install),
    "dev-keda-pool": ("dev", _keda_pool),
}


def registrations(variant: str, loader: UpstreamLoader) -> list[Registration]:
    stack, vary = VARIANTS[variant]
    spec = spec_from_config(vary(stack_config(stack)))
    every_crd = ClusterWithCrds({"sandboxes.agents.x-k8s.io", "sandboxtemplates.extensions.agents.x-k8s.io",
                                 "sandboxclaims.extensions.agents.x-k8s.io", "sandboxwarmpools.extensions.agents.x-k8s.io",
                                 "scaledobjects.keda.sh", "datavolumes.cdi.kubevirt.io",
                                 "prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"})
    return run_under_mocks(lambda: deploy(spec, loader), stack=stack, resource_mocks=every_crd)


def urns(variant: str, loader: UpstreamLoader) -> list[str]:
    return sorted(r.urn for r in registrations(variant, loader))


def lost(recorded: list[str], current: list[Registration]) -> list[str]:
    """Recorded URNs that no current resource has, neither as its URN nor through an alias."""
    reachable = {r.urn for r in current} | {aliased for r in current for aliased in [*_alias_urns(r), *r.alias_urns]}
    return [urn for urn in recorded if urn not in reachable]


def _alias_urns(r: Registration) -> list[str]:
    """The URNs a resource answers to through type aliases (urn:pulumi:STACK::PROJECT::PARENTS$TYPE::NAME)."""
    head, project, qualified, name = r.urn.split("::", 3)
    parents = qualified.rpartition("$")[0]
    return [f"{head}::{project}::{parents + '$' if parents else ''}{t}::{name}" for t in r.alias_types]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_recorded_urns_are_kept_or_aliased(variant: str, loader: UpstreamLoader) -> None:
    recorded = (RECORDED / f"{variant}.txt").read_text().split()
    current = registrations(variant, loader)
    missing = lost(recorded, current)
    assert not missing, (f"{variant}: {len(missing)} recorded URN(s) are neither kept nor aliased "
                         "(the engine would replace live objects):\n" + "\n".join(missing))
    new = sorted({r.urn for r in current} - set(recorded))
    assert not new, (f"{variant}: resources the recording does not know; record them "
                     "(`python -m tests.test_urns --record`):\n" + "\n".join(new))


def test_a_retyped_component_is_lost_unless_aliased(loader: UpstreamLoader) -> None:
    recorded = (RECORDED / "dev.txt").read_text().split()
    current = registrations("dev", loader)
    pool = next(r for r in current if r.type == "sandbox-infra:index:WarmPool")
    old_type = pool.type
    pool.urn = pool.urn.replace("$sandbox-infra:index:WarmPool::", "$sandbox-infra:components:WarmPool::")
    assert lost(recorded, current) == [pool.urn.replace("sandbox-infra:components:WarmPool", old_type)]
    pool.alias_types = [old_type]
    assert lost(recorded, current) == []


if __name__ == "__main__" and "--record" in sys.argv:
    upstream = UpstreamLoader()
    RECORDED.mkdir(exist_ok=True)
    for name in VARIANTS:
        # Kept: a URN once recorded stays, so that the test keeps proving it reachable (aliased).
        path = RECORDED / f"{name}.txt"
        before = set(path.read_text().split()) if path.exists() else set()
        path.write_text("\n".join(sorted(before | set(urns(name, upstream)))) + "\n")
        print(f"recorded {RECORDED / name}.txt")
