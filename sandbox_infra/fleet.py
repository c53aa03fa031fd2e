"""A fleet of clusters: stacks rolled out in ordered waves.

`stacks/fleet.yaml` lists waves (e.g. canary -> staging -> production); within a
wave at most `maxParallel` stacks run at once, and the next wave starts only
when every stack of the current one succeeded without mandatory policy
violations. The Pulumi engine is reached through one small interface,
`StackOperations`: the real implementation drives the Pulumi Automation API and
needs a Pulumi CLI on PATH; tests substitute their own.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field

from components.errors import ConfigError
from components.inputs import load_file
from components.specs.base import DnsLabel, Spec
from components.specs.loader import STACKS_DIR, available_stacks, load_stack, validated
from components.specs.warm_pool import WarmPoolSpec
from components.upstream import PROJECT_ROOT

from .diff import StackDiff
from .output import style_by, table
from .stacks import did_you_mean

Action = Literal["preview", "up"]
Result = Literal["succeeded", "failed", "blocked", "skipped"]


class WaveSpec(Spec):
    name: DnsLabel
    stacks: list[str] = Field(min_length=1)
    max_parallel: int = Field(default=1, ge=1, le=32)


class FleetSpec(Spec):
    waves: list[WaveSpec] = Field(min_length=1)

    @property
    def stacks(self) -> list[str]:
        return [stack for wave in self.waves for stack in wave.stacks]


def load_fleet(path: Path | None = None, stacks_dir: Path = STACKS_DIR) -> FleetSpec:
    path = path or stacks_dir / "fleet.yaml"
    if not path.is_file():
        raise ConfigError(f"--fleet: no fleet file at {path}")
    document = load_file(path, str(path))
    if not isinstance(document, dict):
        # Never echo the document: a file passed here by mistake may be anything, secrets included.
        raise ConfigError(f"{path}: a fleet file must be a mapping with a 'waves:' list; "
                          f"got {'nothing' if document is None else type(document).__name__}")
    fleet = validated(FleetSpec, document, str(path), prefix="")
    known, seen = set(available_stacks(stacks_dir)), set()
    problems = []
    for w, wave in enumerate(fleet.waves):
        for s, stack in enumerate(wave.stacks):
            if stack not in known:
                problems.append(f"waves[{w}].stacks[{s}] = {stack!r}: no such stack; allowed: {', '.join(sorted(known))}")
            elif stack in seen:
                problems.append(f"waves[{w}].stacks[{s}] = {stack!r}: already in an earlier wave; each stack rolls out once")
            seen.add(stack)
    if problems:
        raise ConfigError("\n".join([f"{path}: invalid fleet ({len(problems)} problems)", *[f"  - {p}" for p in problems]]))
    return fleet


def select(fleet: FleetSpec, stacks: list[str], waves: list[str], parallel: int | None = None) -> FleetSpec:
    """The part of the fleet a rollout is limited to (`--stack`, `--wave`), in wave order,
    each wave at most `parallel` stacks at a time when given."""
    names = [w.name for w in fleet.waves]
    for wave in waves:
        if wave not in names:
            raise ConfigError(f"--wave: no wave named {wave!r} in the fleet file{did_you_mean(wave, names)}; "
                              f"allowed: {', '.join(names)}")
    for stack in stacks:
        if stack not in fleet.stacks:
            raise ConfigError(f"--stack: no stack named {stack!r} in the fleet file{did_you_mean(stack, fleet.stacks)}; "
                              f"allowed: {', '.join(fleet.stacks)}")
    chosen = []
    for wave in fleet.waves:
        members = [s for s in wave.stacks if (not stacks or s in stacks) and (not waves or wave.name in waves)]
        if members:
            chosen.append(wave.model_copy(update={"stacks": members, "max_parallel": parallel or wave.max_parallel}))
    if not chosen:
        raise ConfigError(f"--stack {', '.join(stacks)} --wave {', '.join(waves)}: no stack is in both; "
                          "nothing to do")
    return FleetSpec(waves=chosen)


@dataclass
class StackOutcome:
    stack: str
    wave: str
    result: Result
    changes: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    message: str = ""
    mandatory_violations: int = 0


class StackOperations(Protocol):
    """What the fleet needs from the Pulumi engine, per stack."""

    def run(self, stack: str, action: Action, progress: Callable[[str], None]) -> StackOutcome: ...

    def last_update(self, stack: str) -> str: ...


def run_fleet(
    fleet: FleetSpec, action: Action, operations: StackOperations, progress: Callable[[str], None],
    finished: Callable[[StackOutcome], None] = lambda outcome: None,
) -> list[StackOutcome]:
    """Run `action` wave by wave; stop before the next wave when any stack did not succeed.
    `progress` gets lines for a person watching, `finished` each stack's outcome as it ends."""
    outcomes: list[StackOutcome] = []
    stopped_by: str | None = None
    for wave in fleet.waves:
        if stopped_by is not None:
            outcomes += [StackOutcome(s, wave.name, "skipped", message=f"not run: {stopped_by}") for s in wave.stacks]
            continue
        progress(f"wave {wave.name}: {action} {', '.join(wave.stacks)} (at most {wave.max_parallel} at a time)")
        with ThreadPoolExecutor(max_workers=wave.max_parallel, thread_name_prefix=wave.name) as pool:
            results = list(pool.map(lambda stack, w=wave: _run_one(operations, stack, w.name, action, progress, finished),
                                    wave.stacks))
        outcomes += results
        bad = [o for o in results if o.result != "succeeded"]
        if bad:
            stopped_by = f"wave {wave.name} had {len(bad)} stack(s) {'/'.join(sorted({o.result for o in bad}))}"
            progress(f"wave {wave.name}: stopping the rollout ({', '.join(o.stack for o in bad)})")
    return outcomes


def _run_one(operations: StackOperations, stack: str, wave: str, action: Action,
             progress: Callable[[str], None], finished: Callable[[StackOutcome], None]) -> StackOutcome:
    progress(f"  {stack}: {action} started")
    started = time.monotonic()
    try:
        outcome = operations.run(stack, action, lambda line: progress(f"  {stack}: {line}"))
    except Exception as error:  # one stack's failure must not take down the others' reporting
        outcome = StackOutcome(stack, wave, "failed", message=failure_reason(str(error)))
    outcome.wave = wave
    outcome.duration = time.monotonic() - started
    if outcome.result == "succeeded" and outcome.mandatory_violations:
        outcome.result = "blocked"
        outcome.message = outcome.message or f"{outcome.mandatory_violations} mandatory policy violation(s)"
    progress(f"  {stack}: {outcome.result} in {outcome.duration:.1f}s {outcome.message}".rstrip())
    finished(outcome)
    return outcome


# What the engine prints after the real cause: never the reason to show.
_GENERIC_ERRORS = re.compile(r"^error: (update failed|preview failed|destroy failed|refresh failed)$"
                             r"|Resource monitor has terminated|^(code: \d+|stdout:|stderr:)$")


def failure_reason(text: str) -> str:
    """The line that says why a stack failed: the engine's first specific `error:` line
    (e.g. the cluster it cannot reach), else the last line that says anything."""
    lines = [re.sub(r"^(stdout|stderr): ", "", line.strip()) for line in text.strip().splitlines() if line.strip()]
    specific = [line for line in lines if not _GENERIC_ERRORS.search(line)]
    errors = [line for line in specific if "error:" in line]
    if errors:
        return errors[0][errors[0].index("error:"):][:300]  # without the resource the line starts with
    return specific[-1][:300] if specific else "failed"


def summary_table(outcomes: list[StackOutcome]) -> str:
    rows = []
    for o in outcomes:
        changes = ", ".join(f"{n} {op}" for op, n in sorted(o.changes.items()) if op != "same" and n) or "-"
        rows.append((o.stack, o.wave, o.result, changes, f"{o.duration:.1f}s", o.message))
    return table(("stack", "wave", "result", "changes", "duration", "note"), rows, style_by(2))


def outcomes_document(action: str, outcomes: list[StackOutcome]) -> dict:
    """`fleet preview|up -o json`: the run's result and each stack's."""
    return {
        "action": action,
        "succeeded": all(o.result == "succeeded" for o in outcomes),
        "stacks": [{"stack": o.stack, "wave": o.wave, "result": o.result, "changes": o.changes,
                    "durationSeconds": round(o.duration, 3), "mandatoryViolations": o.mandatory_violations,
                    "message": o.message} for o in outcomes],
    }


def _pool(pool: WarmPoolSpec) -> dict:
    slo = pool.slo
    plan = slo.autoscaling_plan if slo is not None and slo.autoscaling is not None else None
    autoscaler = None
    if slo is not None and slo.autoscaling is not None and plan is not None:
        autoscaler = {"engine": slo.autoscaling.engine, "minReplicas": plan.min_replicas, "maxReplicas": plan.max_replicas}
    return {"name": pool.name, "replicas": pool.replicas, "autoscaler": autoscaler}


def status_rows(fleet: FleetSpec, stacks_dir: Path, operations: StackOperations | None) -> list[dict]:
    """`fleet status`: what each stack's config runs, and its last update (None without the Pulumi CLI)."""
    rows = []
    for wave in fleet.waves:
        for stack in wave.stacks:
            spec = load_stack(stack, stacks_dir)
            rows.append({"stack": stack, "wave": wave.name, "environment": spec.cluster.environment,
                         "agentSandboxVersion": spec.agent_sandbox.version,
                         "warmPools": [_pool(p) for p in spec.warm_pools],
                         "lastUpdate": operations.last_update(stack) if operations else None})
    return rows


def _pool_size(pool: dict) -> str:
    """`python=15`, or for an autoscaled SLO pool its initial size and bounds: `python=15 (hpa 5-35)`."""
    scaler = pool["autoscaler"]
    bounds = f" ({scaler['engine']} {scaler['minReplicas']}-{scaler['maxReplicas']})" if scaler else ""
    return f"{pool['name']}={pool['replicas']}{bounds}"


def status_table(rows: list[dict]) -> str:
    return table(("stack", "wave", "environment", "agent-sandbox", "warm pools (replicas)", "last update"),
                 [(r["stack"], r["wave"], r["environment"], r["agentSandboxVersion"],
                   ", ".join(_pool_size(p) for p in r["warmPools"]) or "-", r["lastUpdate"] or "unknown") for r in rows])


def affected_row(result: StackDiff, fleet: FleetSpec) -> dict:
    return {"stack": result.stack,
            "wave": next(w.name for w in fleet.waves if result.stack in w.stacks),
            "affected": bool(not result.empty or result.policy_introduced or result.policy_fixed),
            "added": len(result.added), "changed": len(result.changed), "removed": len(result.removed),
            "policyIntroduced": len(result.policy_introduced), "policyFixed": len(result.policy_fixed)}


class PulumiCliMissing(ConfigError):
    pass


class AutomationOperations:
    """The real engine: Pulumi Automation API over the project's local workspace."""

    def __init__(self, work_dir: Path = PROJECT_ROOT, refresh: bool = False) -> None:
        if shutil.which("pulumi") is None:
            raise PulumiCliMissing("no Pulumi CLI on PATH: install it (https://www.pulumi.com/docs/install/) "
                                   "to preview or update stacks; offline: fleet render|check|diff")
        self.work_dir = work_dir
        self.refresh = refresh

    def _stack(self, stack: str):
        from pulumi import automation

        return automation.select_stack(stack_name=stack, work_dir=str(self.work_dir))

    def run(self, stack: str, action: Action, progress: Callable[[str], None]) -> StackOutcome:
        from pulumi import automation

        violations: list[str] = []

        def on_event(event: automation.EngineEvent) -> None:
            policy = event.policy_event
            if policy is not None and policy.enforcement_level == "mandatory":
                violations.append(f"{policy.policy_name}: {policy.message}")
                progress(f"mandatory policy violation {policy.policy_name}")

        policies = self.work_dir / "policies"
        options: dict = {"on_event": on_event, "refresh": self.refresh}
        target = self._stack(stack)
        with tempfile.TemporaryDirectory() as scratch:
            if (policies / "PulumiPolicy.yaml").is_file():
                # The pack judges by the stack's `policy:` settings, handed over as its policy config.
                config = Path(scratch) / f"{stack}.json"
                try:
                    settings = load_stack(stack, self.work_dir / "stacks").policy_context()
                except ConfigError as error:
                    return StackOutcome(stack, "", "failed", message=str(error).splitlines()[0][:300])
                from sandbox_policy.crossguard import pack_config  # pulumi_policy: only where a run needs it

                config.write_text(json.dumps(pack_config(settings)))
                options |= {"policy_packs": [str(policies)], "policy_pack_configs": [str(config)]}
            return self._apply(target, stack, action, options, violations)

    def _apply(self, target, stack: str, action: Action, options: dict, violations: list[str]) -> StackOutcome:
        from pulumi import automation

        try:
            if action == "preview":
                result = target.preview(**options)
                changes = dict(result.change_summary)
            else:
                result = target.up(**options)
                changes = dict(result.summary.resource_changes or {})
        except automation.CommandError as error:
            return StackOutcome(stack, "", "failed", message=failure_reason(str(error)),
                                mandatory_violations=len(violations))
        return StackOutcome(stack, "", "succeeded", changes={str(k): int(v) for k, v in changes.items()},
                            mandatory_violations=len(violations))

    def last_update(self, stack: str) -> str:
        info = self._stack(stack).info()
        if info is None:
            return "never"
        return f"{info.result} at {info.end_time:%Y-%m-%d %H:%M} UTC" if info.end_time else str(info.result)
