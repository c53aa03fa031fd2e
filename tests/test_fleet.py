"""Fleet: the fleet file, wave planning, bounded parallelism and stop-on-failure."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from components.errors import ConfigError
from sandbox_infra.cli import main
from sandbox_infra.fleet import (
    AutomationOperations,
    FleetSpec,
    StackOutcome,
    WaveSpec,
    failure_reason,
    load_fleet,
    run_fleet,
    select,
    summary_table,
)

from .conftest import SHIPPED_STACKS


class FakeOperations:
    """Stands in for the Pulumi engine: scripted results, records order and concurrency."""

    def __init__(self, results: dict[str, StackOutcome] | None = None, delay: float = 0.02) -> None:
        self.results = results or {}
        self.delay = delay
        self.calls: list[str] = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def run(self, stack: str, action: str, progress: Callable[[str], None]) -> StackOutcome:
        with self.lock:
            self.calls.append(stack)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        if stack == "explodes":
            raise RuntimeError("error: update failed\n  kubernetes:apps/v1:Deployment x: timed out")
        return self.results.get(stack, StackOutcome(stack, "", "succeeded", changes={"create": 1, "same": 3}))

    def last_update(self, stack: str) -> str:
        return "never"


def _fleet(*waves: tuple[str, list[str], int]) -> FleetSpec:
    return FleetSpec(waves=[WaveSpec(name=n, stacks=s, max_parallel=p) for n, s, p in waves])


def test_waves_run_in_order_and_within_the_parallelism_bound() -> None:
    fleet = _fleet(("canary", ["a"], 1), ("prod", ["b", "c", "d", "e"], 2))
    operations = FakeOperations(delay=0.05)
    log: list[str] = []
    outcomes = run_fleet(fleet, "up", operations, log.append)
    assert operations.calls[0] == "a" and sorted(operations.calls[1:]) == ["b", "c", "d", "e"]
    assert operations.max_running == 2
    assert [o.result for o in outcomes] == ["succeeded"] * 5
    assert [o.wave for o in outcomes] == ["canary", "prod", "prod", "prod", "prod"]
    assert log[0] == "wave canary: up a (at most 1 at a time)"


def test_a_failed_stack_stops_the_next_waves_but_finishes_its_own() -> None:
    fleet = _fleet(("canary", ["a"], 1), ("staging", ["explodes", "b"], 2), ("prod", ["c"], 1))
    operations = FakeOperations()
    outcomes = {o.stack: o for o in run_fleet(fleet, "up", operations, lambda _: None)}
    assert outcomes["explodes"].result == "failed"
    assert outcomes["explodes"].message == "kubernetes:apps/v1:Deployment x: timed out"
    assert outcomes["b"].result == "succeeded"
    assert outcomes["c"].result == "skipped"
    assert outcomes["c"].message == "not run: wave staging had 1 stack(s) failed"
    assert "c" not in operations.calls


def test_mandatory_policy_violations_block_the_rollout() -> None:
    fleet = _fleet(("canary", ["a"], 1), ("prod", ["b"], 1))
    blocked = StackOutcome("a", "", "succeeded", changes={"update": 1}, mandatory_violations=2)
    outcomes = run_fleet(fleet, "preview", FakeOperations({"a": blocked}), lambda _: None)
    assert [(o.stack, o.result) for o in outcomes] == [("a", "blocked"), ("b", "skipped")]
    assert outcomes[0].message == "2 mandatory policy violation(s)"


def test_summary_table_lists_every_stack() -> None:
    table = summary_table([
        StackOutcome("dev", "canary", "succeeded", {"create": 2, "same": 9}, 1.25),
        StackOutcome("prod", "production", "skipped", message="not run: wave canary had 1 stack(s) failed"),
    ])
    lines = table.splitlines()
    assert lines[0].split() == ["STACK", "WAVE", "RESULT", "CHANGES", "DURATION", "NOTE"]
    assert lines[1].split()[:5] == ["dev", "canary", "succeeded", "2", "create"]
    assert "1.2s" in lines[1] or "1.3s" in lines[1]
    assert lines[2].split()[:4] == ["prod", "production", "skipped", "-"]


def test_shipped_fleet_covers_every_shipped_stack_once() -> None:
    fleet = load_fleet()
    assert sorted(fleet.stacks) == sorted(SHIPPED_STACKS)
    assert fleet.waves[0].stacks == ["dev"]


@pytest.mark.parametrize(("waves", "message"), [
    ("waves: []", "waves = []: list should have at least 1 item"),
    ("waves:\n  - {name: a, stacks: [nope]}", "waves[0].stacks[0] = 'nope': no such stack; allowed: dev"),
    ("waves:\n  - {name: a, stacks: [dev]}\n  - {name: b, stacks: [dev]}", "waves[1].stacks[0] = 'dev': already in"),
    ("waves:\n  - {name: a, stacks: [dev], maxParallel: 0}", "waves[0].maxParallel = 0: input should be greater"),
    ("waves:\n  - {name: a, stacks: [dev], parallel: 2}",
     "waves[0].parallel: unknown key (did you mean 'maxParallel'?); allowed keys here: name"),
])
def test_bad_fleet_files_name_the_key(tmp_path: Path, waves: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(waves + "\n")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    assert message in str(caught.value)


def test_preview_without_pulumi_cli_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["fleet", "preview"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Pulumi CLI on PATH") and err.count("\n") == 1


def test_status_without_pulumi_cli_shows_config_and_fails(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["fleet", "status"]) == 2
    captured = capsys.readouterr()
    rows = {line.split()[0]: line for line in captured.out.splitlines()[1:]}
    # prod's python pool is sized from its SLO: 60 claims/min x 8 s = 8 erlangs needs 15 replicas for
    # 99 % warm hits (Erlang B(15, 8) = 0.9 %, B(14, 8) = 1.7 %), autoscaled between the sizes for
    # 10/min and 180/min; prod-us overrides the rates (24/min: 9 replicas).
    assert "python=15 (hpa 5-35), browser=10" in rows["prod"] and rows["prod"].endswith("unknown")
    assert "python=9 (hpa 4-17), browser=4" in rows["prod-us"]
    assert "no Pulumi CLI on PATH" in captured.err


@pytest.mark.usefixtures("upstream")
def test_fleet_render_writes_every_stack(tmp_path: Path) -> None:
    assert main(["fleet", "render", "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(SHIPPED_STACKS)


@pytest.mark.skipif(shutil.which("pulumi") is None, reason="no Pulumi CLI on PATH; the real Automation API runner "
                    "is exercised end to end by tests/e2e/test_pulumi_fleet.py with the toolchain's CLI")
def test_real_operations_use_the_local_workspace() -> None:
    operations = AutomationOperations()
    assert operations.work_dir.joinpath("Pulumi.yaml").is_file()


def test_a_failed_stack_is_reported_with_the_engine_s_reason() -> None:
    # The Automation API's CommandError text, as a failed `pulumi up` of an unreachable cluster gives it.
    text = """
 code: 255
 stdout: Updating (broken):
     pulumi:pulumi:Stack sandbox-infra-broken running
 error: configured Kubernetes cluster is unreachable: dial tcp 127.0.0.1:40913: connect: connection refused
     pulumi:pulumi:Stack sandbox-infra-broken **failed** 1 error
 error: update failed

 stderr:
"""
    assert failure_reason(text).startswith("error: configured Kubernetes cluster is unreachable")
    assert failure_reason(" code: 1\n stdout: something went wrong\n stderr:\n") == "something went wrong"
    assert failure_reason("") == "failed"


class _Recording:
    """Stands in for the Automation API: records what would have run, and how."""

    last: _Recording
    fail_preview_of: tuple[str, ...] = ()

    def __init__(self, _work_dir: Path, refresh: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refresh = refresh
        self.lock = threading.Lock()
        _Recording.last = self

    def run(self, stack: str, action: str, progress: Callable[[str], None]) -> StackOutcome:
        with self.lock:
            self.calls.append((action, stack))
        if action == "preview" and stack in self.fail_preview_of:
            return StackOutcome(stack, "", "failed", message="error: cluster unreachable")
        return StackOutcome(stack, "", "succeeded", changes={"update": 2, "same": 5})

    def updated(self) -> list[str]:
        # (the production wave runs two at a time, so the order within it varies)
        return sorted(stack for action, stack in self.calls if action == "up")

    def previewed(self) -> list[str]:
        return sorted(stack for action, stack in self.calls if action == "preview")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> type[_Recording]:
    monkeypatch.setattr("sandbox_infra.fleet.AutomationOperations", _Recording)
    monkeypatch.setattr(_Recording, "fail_preview_of", ())
    return _Recording


@pytest.mark.parametrize(("tty", "answer", "flags", "code", "rolled_out"), [
    (False, None, [], 2, False),      # no terminal to ask (CI): refuse, say --yes, preview nothing
    (True, "no", [], 2, False),
    (True, "", [], 2, False),         # Enter alone is not a yes
    (True, "yes", [], 0, True),
    (False, None, ["--yes"], 0, True),
    (False, None, ["-y"], 0, True),
])
def test_fleet_up_changes_nothing_without_a_yes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                engine: type[_Recording], tty: bool, answer: str | None,
                                                flags: list[str], code: int, rolled_out: bool) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: tty)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append("asked") or answer)
    assert main(["fleet", "up", *flags]) == code
    err = capsys.readouterr().err
    assert engine.last.updated() == (sorted(SHIPPED_STACKS_IN_FLEET_ORDER) if rolled_out else [])
    if not flags:
        assert "4 stack(s) in 3 wave(s)" in err and "production: prod, prod-us" in err
    # The question comes after every stack's preview, whose changes are shown with it.
    assert bool(asked) == (tty and not flags)
    assert engine.last.previewed() == (sorted(SHIPPED_STACKS_IN_FLEET_ORDER) if asked else [])
    if asked:
        assert "Type 'yes' to continue" in err
        preview_rows = {line.split()[0]: line for line in err.splitlines() if line.split()[:1] in (["dev"], ["prod"])}
        assert "2 update" in preview_rows["dev"] and "succeeded" in preview_rows["prod"]
    if not tty and not flags:
        assert "pass --yes" in err


def test_fleet_up_does_not_ask_when_a_preview_fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                    engine: type[_Recording]) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(engine, "fail_preview_of", ("staging",))
    monkeypatch.setattr("builtins.input", lambda prompt="": pytest.fail("asked although a preview failed"))
    assert main(["fleet", "up"]) == 1
    assert engine.last.updated() == []
    assert "the preview of staging did not succeed; nothing was changed" in capsys.readouterr().err


def test_fleet_up_limited_to_stacks_and_waves(capsys: pytest.CaptureFixture, engine: type[_Recording]) -> None:
    assert main(["fleet", "up", "--yes", "--wave", "production", "-s", "prod-us", "--refresh", "-o", "json"]) == 0
    assert engine.last.calls == [("up", "prod-us")] and engine.last.refresh
    document = json.loads(capsys.readouterr().out)
    assert document["action"] == "up" and document["succeeded"] is True
    assert [(s["stack"], s["wave"], s["result"], s["changes"]) for s in document["stacks"]] == [
        ("prod-us", "production", "succeeded", {"update": 2, "same": 5})]


@pytest.mark.parametrize(("flags", "message"), [
    (["--wave", "prodution"], "--wave: no wave named 'prodution' in the fleet file (did you mean 'production'?)"),
    (["-s", "prod-eu"], "--stack: no stack named 'prod-eu' in the fleet file (did you mean 'prod-us'?)"),
    (["-s", "dev", "--wave", "production"], "no stack is in both; nothing to do"),
    (["--parallel", "0"], "'--parallel': 0 is not in the range 1<=x<=32"),
])
def test_fleet_rollout_filters_are_checked(capsys: pytest.CaptureFixture, engine: type[_Recording],
                                           flags: list[str], message: str) -> None:
    assert main(["fleet", "preview", *flags]) == 2
    assert message in capsys.readouterr().err


def test_parallel_overrides_each_wave_s_bound() -> None:
    fleet = select(load_fleet(), [], [], parallel=3)
    assert [w.max_parallel for w in fleet.waves] == [3, 3, 3]
    assert select(load_fleet(), [], ["production"]).waves[0].max_parallel == 2


SHIPPED_STACKS_IN_FLEET_ORDER = ["dev", "staging", "prod", "prod-us"]
