"""Wall time of the real Pulumi engine against kubectl, side by side, on the e2e control plane.

    make bench-engine     # or: .venv/bin/python -m benchmarks.pulumi_engine --repeat 3 [--stacks dev,prod] [--fleet]

Pulumi against kubectl (the default, issue 25): per repetition two fresh control planes
(etcd + kube-apiserver, the same cluster chores: KubeVirt's VM CRDs, the stand-in
controller-manager), one for each tool, and the same objects of one stack (default: dev, with
`cluster.waitForWorkloads: false` as in the e2e tests):

- pulumi: the first `pulumi up --yes --skip-preview`, a no-op `up`, then `preview` (a file://
  backend, the toolchain's CLI, language host and provider; tests/e2e/pulumi_project.py);
- kubectl (k8s.io/kubectl v0.36.3, `tools/kubectl`): `apply --server-side` of the CRDs of
  `sandbox-infra render`, `wait --for condition=Established`, `apply --server-side` of the rest
  (namespaces first); the same again (the re-apply); then `diff --server-side` of everything.
  Its discovery cache is per run (`--cache-dir`), so the first apply starts cold as pulumi does.

The two tools take turns operation by operation (which one goes first alternates between
repetitions), so a change in the machine's load hits both alike. Prints the median of the
repetitions, the ratios against issue 25's targets, the load average around the runs, and
where pulumi's CPU went (the CLI/engine, the Python program, the provider, the API server).

`--skip-checkpoints` is a diagnostic: pulumi without its per-step state checkpoints (which users
keep), to show what they cost.

`--stacks` adds the older per-stack table (preview and up of each stack on an empty plane),
`--fleet` the `sandbox-infra fleet preview` figure. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.e2e.controlplane import control_plane, register_kubevirt_crds
from tests.e2e.fake_node import FakeControllerManager
from tests.e2e.helpers import SHIPPED_STACKS, shipped_contexts
from tests.e2e.pulumi_project import (
    PULUMI,
    Project,
    make_project,
    register_virt_operator_crds,
    stack_on_fresh_plane,
    uses_kubevirt,
)
from tests.e2e.toolchain import binary, missing_reason

TICKS = os.sysconf("SC_CLK_TCK")
# Issue 25, item 8: pulumi / kubectl at most this.
TARGETS = {"first up": 3.0, "no-op up": 2.5, "preview": 2.5}


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _role(pid: str) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if any(b"pulumi-language-python-exec" in arg for arg in argv):
        return "program"
    name = os.path.basename(argv[0]).decode(errors="replace")
    return {"pulumi": "engine", "pulumi-resource-kubernetes": "provider", "pulumi-language-python": "language host",
            "kubectl": "kubectl"}.get(name, "other")


class TreeCpu(threading.Thread):
    """CPU seconds of every process below this one while active, by role (sampled every
    20 ms from /proc: a process's last sample counts once it is gone)."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self._done = interval, threading.Event()
        self.cpu: dict[str, tuple[str, float]] = {}
        self.base: dict[str, float] = {}

    def _sample(self) -> None:
        stats = {pid: stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _stat(pid))}
        me = str(os.getpid())
        for pid, stat in stats.items():
            parent, depth = stat[1], 0
            while parent not in (me, "0", "1") and parent in stats and depth < 12:
                parent, depth = stats[parent][1], depth + 1
            if parent != me:
                continue
            role = self.cpu[pid][0] if pid in self.cpu else _role(pid)
            if role is not None:
                self.cpu[pid] = (role, (int(stat[11]) + int(stat[12])) / TICKS)

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._sample()  # what was already running (the planes) counts only from here on
        self.base = {pid: seconds for pid, (_, seconds) in self.cpu.items()}
        super().start()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        totals: dict[str, float] = {}
        for pid, (role, seconds) in self.cpu.items():
            if role != "other":  # the planes' processes: measured on their own (process_cpu)
                totals[role] = totals.get(role, 0.0) + seconds - self.base.get(pid, 0.0)
        return totals


def process_cpu(processes: list[subprocess.Popen]) -> float:
    """CPU seconds so far of a control plane's etcd and kube-apiserver."""
    return sum((int(stat[11]) + int(stat[12])) / TICKS for p in processes if (stat := _stat(str(p.pid))))


@dataclass
class Timing:
    wall: float
    cpu: dict[str, float]
    load: tuple[float, float]


def timed(run, plane_processes: list[subprocess.Popen]) -> Timing:
    sampler = TreeCpu()
    sampler.start()
    load = os.getloadavg()[0]
    plane = process_cpu(plane_processes)
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    cpu = sampler.stop()
    cpu["API server + etcd"] = process_cpu(plane_processes) - plane
    return Timing(wall, cpu, (load, os.getloadavg()[0]))


# --- kubectl's side ------------------------------------------------------------------------

@dataclass
class Kubectl:
    kubeconfig: Path
    cache: Path
    crds: Path
    rest: Path

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        command = [str(binary("kubectl")), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode not in ok:
            raise RuntimeError(f"{' '.join(command[1:])} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def apply(self) -> None:
        """CRDs, wait until Established, then the rest: what `pulumi up` does for this stack."""
        self("apply", "--server-side", "-f", str(self.crds))
        self("wait", "--for", "condition=Established", "--timeout", "120s", "-f", str(self.crds))
        self("apply", "--server-side", "-f", str(self.rest))

    def diff(self) -> int:
        """Exit code of `kubectl diff` (0: nothing would change; 1: something would)."""
        return self("diff", "--server-side", "-f", str(self.crds), "-f", str(self.rest), ok=(0, 1)).returncode


def rendered_files(project: Project, stack: str, workdir: Path) -> tuple[Path, Path, int]:
    """The stack as `sandbox-infra render` prints it (with the project copy's config), split
    into its CRDs and the rest (namespaces first, else in render order)."""
    out = workdir / f"{stack}.yaml"
    subprocess.run([sys.executable, "-m", "sandbox_infra", "--stacks-dir", str(project.stacks_dir), "render", "-s", stack,
                    "--output-file", str(out)], cwd=project.path, env=project.env, check=True, capture_output=True)
    objects = [o for o in yaml.safe_load_all(out.read_text()) if o]
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    rest = sorted((o for o in objects if o["kind"] != "CustomResourceDefinition"), key=lambda o: o["kind"] != "Namespace")
    (workdir / "crds.yaml").write_text(yaml.safe_dump_all(crds))
    (workdir / "rest.yaml").write_text(yaml.safe_dump_all(rest))
    return workdir / "crds.yaml", workdir / "rest.yaml", len(objects)


@contextlib.contextmanager
def kubectl_plane(workdir: Path, project: Project, stack: str) -> Iterator[tuple[Kubectl, list[subprocess.Popen], int]]:
    """A second fresh plane, set up exactly as stack_on_fresh_plane sets up pulumi's."""
    with control_plane(workdir / "plane", shipped_contexts()) as plane:
        kube = plane.client()
        if uses_kubevirt(project, stack):
            register_kubevirt_crds(kube)
        crds, rest, count = rendered_files(project, stack, workdir)
        namespaces = sorted(m["metadata"]["name"] for m in project.rendered(stack) if m["kind"] == "Namespace")
        with FakeControllerManager(kube, namespaces):
            yield Kubectl(plane.kubeconfig, workdir / "kubectl-cache", crds, rest), plane.processes, count


# --- side by side --------------------------------------------------------------------------

OPERATIONS = ("first up", "no-op up", "preview")


@dataclass
class Results:
    pulumi: dict[str, list[Timing]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    kubectl: dict[str, list[Timing]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    objects: int = 0
    resources: int = 0
    diff_codes: list[int] = field(default_factory=list)


@contextlib.contextmanager
def pulumi_plane(workdir: Path, stack: str, checkpoints: bool = True) -> Iterator[tuple[Project, list[subprocess.Popen]]]:
    """stack_on_fresh_plane's plane and project copy, with the plane's processes (for their CPU)."""
    with control_plane(workdir / "plane", shipped_contexts()) as plane:
        project = make_project(workdir / "project", plane, (stack,))
        # The e2e harness skips per-step state checkpoints; users do not, so neither does this
        # unless --skip-checkpoints asks what they cost.
        if checkpoints:
            project.env.pop("PULUMI_SKIP_CHECKPOINTS")
        if uses_kubevirt(project, stack):
            register_virt_operator_crds(project.kube)
        namespaces = sorted(m["metadata"]["name"] for m in project.rendered(stack) if m["kind"] == "Namespace")
        with FakeControllerManager(project.kube, namespaces):
            yield project, plane.processes


def side_by_side(stack: str, workdir: Path, kubectl_first: bool, results: Results, checkpoints: bool = True) -> None:
    with pulumi_plane(workdir / "pulumi", stack, checkpoints) as (project, pulumi_processes), \
            kubectl_plane(workdir / "kubectl", project, stack) as (kubectl, kubectl_processes, objects):
        results.objects = objects
        pulumi_ops = {
            "first up": lambda: project.pulumi("up", "--yes", "--skip-preview", stack=stack),
            "no-op up": lambda: project.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes", stack=stack),
            "preview": lambda: project.pulumi("preview", "--expect-no-changes", stack=stack),
        }
        kubectl_ops = {
            "first up": kubectl.apply,
            "no-op up": kubectl.apply,
            "preview": lambda: results.diff_codes.append(kubectl.diff()),
        }
        for op in OPERATIONS:
            turns = [("kubectl", kubectl_ops[op], kubectl_processes), ("pulumi", pulumi_ops[op], pulumi_processes)]
            for tool, run, processes in (turns if kubectl_first else turns[::-1]):
                getattr(results, tool)[op].append(timed(run, processes))
        export = project.pulumi("stack", "export", stack=stack).stdout
        results.resources = export.count('"urn":')


def _median(timings: list[Timing]) -> float:
    return statistics.median(t.wall for t in timings)


def _cpu(timings: list[Timing]) -> str:
    roles = sorted({role for t in timings for role in t.cpu}, key=lambda r: (r == "API server + etcd", r))
    return ", ".join(f"{role} {statistics.median(t.cpu.get(role, 0.0) for t in timings):.1f}" for role in roles
                     if statistics.median(t.cpu.get(role, 0.0) for t in timings) >= 0.05)


def print_side_by_side(stack: str, results: Results, repeat: int, checkpoints: bool = True) -> None:
    loads = [x for tool in (results.pulumi, results.kubectl) for ts in tool.values() for t in ts for x in t.load]
    print(f"{stack}: pulumi vs kubectl, {results.objects} objects ({results.resources} Pulumi resources), "
          f"median of {repeat}, {os.cpu_count()} cores, load average {min(loads):.1f}-{max(loads):.1f}")
    if not checkpoints:
        print("  --skip-checkpoints: pulumi WITHOUT its per-step state checkpoints (PULUMI_SKIP_CHECKPOINTS), "
              "which users keep: what the checkpoints cost, not what users get")
    print(f"  {'operation':<38} {'pulumi':>8} {'kubectl':>8} {'ratio':>7}  target")
    kubectl_names = {"first up": "apply (CRDs, wait, rest)", "no-op up": "re-apply", "preview": "diff --server-side"}
    for op in OPERATIONS:
        pulumi, kubectl = _median(results.pulumi[op]), _median(results.kubectl[op])
        ratio = pulumi / kubectl
        verdict = "met" if ratio <= TARGETS[op] else "MISSED"
        label = f"{op} / {kubectl_names[op]}"
        print(f"  {label:<38} {pulumi:7.1f}s {kubectl:7.1f}s {ratio:6.1f}x  <= {TARGETS[op]}x: {verdict}")
    print("  CPU seconds (median):")
    for op in OPERATIONS:
        print(f"    {op:<9} pulumi: {_cpu(results.pulumi[op])}")
        print(f"    {'':<9} kubectl: {_cpu(results.kubectl[op])}")
    if any(results.diff_codes):
        print(f"  note: kubectl diff found differences after the re-apply (exit codes {results.diff_codes})")


# --- the older per-stack table and the fleet ---------------------------------------------

def _row(name: str, timings: list[Timing]) -> str:
    wall = _median(timings)
    cpu = statistics.median(t.cpu.get("program", 0.0) for t in timings)
    return f"{name:<8} {wall:7.1f} s   program {cpu:5.1f} s CPU ({cpu / wall:4.0%})"


def per_stack(stack: str, workdir: Path) -> tuple[Timing, Timing, int]:
    with pulumi_plane(workdir, stack) as (project, processes):
        preview = timed(lambda: project.pulumi("preview", stack=stack), processes)
        up = timed(lambda: project.pulumi("up", "--yes", "--skip-preview", stack=stack), processes)
        return preview, up, len(project.rendered(stack))


def fleet_preview(workdir: Path) -> tuple[float, list[float]]:
    """(wall seconds of `fleet preview` over stacks/fleet.yaml, each stack's single preview).

    The fleet previews with the policy pack (as `fleet preview` does), so the single
    previews here do too."""
    with stack_on_fresh_plane(workdir, *SHIPPED_STACKS) as project:
        singles = []
        for stack in SHIPPED_STACKS:
            started = time.perf_counter()
            project.pulumi("preview", "--policy-pack", "policies", stack=stack)
            singles.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sandbox_infra", "--stacks-dir", str(project.stacks_dir), "fleet", "preview"],
                       cwd=project.path, env=project.env, check=True, capture_output=True)
        return time.perf_counter() - started, singles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is printed (default 3)")
    parser.add_argument("--stack", default="dev", help="the stack pulumi and kubectl apply side by side (default dev)")
    parser.add_argument("--stacks", default="", help="comma-separated: also preview and up each of these on an "
                        f"empty plane (the per-stack table; shipped: {','.join(SHIPPED_STACKS)})")
    parser.add_argument("--fleet", action="store_true", help="also time `fleet preview` of stacks/fleet.yaml")
    parser.add_argument("--skip-checkpoints", action="store_true",
                        help="diagnostic: run pulumi without its per-step state checkpoints, which users keep "
                             "(shows what they cost)")
    args = parser.parse_args(argv)
    # A TERM (e.g. from `timeout`) unwinds like Ctrl-C, so that both planes are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    reason = missing_reason("etcd", "kube-apiserver", "kubectl", *PULUMI)
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        if args.stack:
            results = Results()
            for run in range(args.repeat):
                side_by_side(args.stack, Path(tmp) / f"side-by-side-{run}", kubectl_first=run % 2 == 0, results=results,
                             checkpoints=not args.skip_checkpoints)
            print_side_by_side(args.stack, results, args.repeat, checkpoints=not args.skip_checkpoints)
        for stack in filter(None, args.stacks.split(",")):
            previews, ups, objects = [], [], 0
            for run in range(args.repeat):
                preview, up, objects = per_stack(stack, Path(tmp) / f"{stack}-{run}")
                previews.append(preview)
                ups.append(up)
            print(f"{stack} ({objects} objects) on an empty plane, median of {args.repeat}")
            print("  " + _row("preview", previews))
            print("  " + _row("up", ups))
        if args.fleet:
            fleet, singles = fleet_preview(Path(tmp) / "fleet")
            print(f"fleet preview of stacks/fleet.yaml with the policy pack (waves in order, each at its maxParallel): "
                  f"{fleet:.1f} s; single previews with the pack: slowest {max(singles):.1f} s, sum {sum(singles):.1f} s "
                  f"({', '.join(f'{s} {t:.1f}' for s, t in zip(SHIPPED_STACKS, singles, strict=True))}); "
                  f"fleet / slowest {fleet / max(singles):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
