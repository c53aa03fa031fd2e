"""Wall time of the real Pulumi engine on the live e2e control plane, per shipped stack.

    make bench-engine     # or: .venv/bin/python -m benchmarks.pulumi_engine --repeat 3

For each shipped stack and each repetition: a fresh control plane (etcd + kube-apiserver)
and a fresh project copy with a local backend (tests/e2e/pulumi_project.py), then
`pulumi preview` and `pulumi up` of the empty cluster (only `cluster.waitForWorkloads`
changed, as in the e2e tests). Prints the median of the repetitions.

"program" is the CPU time of the Python program itself (the `pulumi-language-python-exec`
process the language host starts: config loading, the builders, the Pulumi SDK's resource
registration), sampled from /proc while it runs; its share is that CPU time over the
command's wall time. The rest is the engine, the provider and the API server.

Then `sandbox-infra fleet preview` of stacks/fleet.yaml (all waves, each at its
`maxParallel`) against the slowest single-stack preview. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.helpers import SHIPPED_STACKS
from tests.e2e.pulumi_project import PULUMI, Project, stack_on_fresh_plane
from tests.e2e.toolchain import missing_reason

TICKS = os.sysconf("SC_CLK_TCK")


class ProgramCpu(threading.Thread):
    """Sum of the CPU seconds of every Python program process seen while active (sampled)."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self.cpu, self._done = interval, {}, threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if b"pulumi-language-python-exec" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def stop(self) -> float:
        self._done.set()
        self.join()
        return sum(self.cpu.values())


@dataclass
class Timing:
    wall: float
    program_cpu: float


def timed(project: Project, stack: str, *args: str) -> Timing:
    sampler = ProgramCpu()
    sampler.start()
    started = time.perf_counter()
    project.pulumi(*args, stack=stack)
    wall = time.perf_counter() - started
    return Timing(wall, sampler.stop())


def one_run(stack: str, workdir: Path) -> tuple[Timing, Timing, int]:
    with stack_on_fresh_plane(workdir, stack) as project:
        preview = timed(project, stack, "preview")
        up = timed(project, stack, "up", "--yes", "--skip-preview")
        return preview, up, len(project.rendered(stack))


def fleet_preview(workdir: Path) -> tuple[float, list[float]]:
    """(wall seconds of `fleet preview` over stacks/fleet.yaml, each stack's single preview).

    The fleet previews with the policy pack (as `fleet preview` does), so the single
    previews here do too."""
    with stack_on_fresh_plane(workdir, *SHIPPED_STACKS) as project:
        singles = [timed(project, stack, "preview", "--policy-pack", "policies").wall for stack in SHIPPED_STACKS]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sandbox_infra", "--stacks-dir", str(project.stacks_dir), "fleet", "preview"],
                       cwd=project.path, env=project.env, check=True, capture_output=True)
        return time.perf_counter() - started, singles


def _row(name: str, timings: list[Timing]) -> str:
    wall = statistics.median(t.wall for t in timings)
    cpu = statistics.median(t.program_cpu for t in timings)
    return f"{name:<8} {wall:7.1f} s   program {cpu:5.1f} s CPU ({cpu / wall:4.0%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per stack; the median is printed (default 3)")
    parser.add_argument("--stacks", default=",".join(SHIPPED_STACKS),
                        help="comma-separated (default: all shipped; '' for the fleet figure only)")
    args = parser.parse_args(argv)
    reason = missing_reason("etcd", "kube-apiserver", *PULUMI)
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 2
    print(f"Pulumi engine on the e2e control plane, median of {args.repeat} ({os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f})")
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        for stack in filter(None, args.stacks.split(",")):
            previews, ups, objects = [], [], 0
            for run in range(args.repeat):
                preview, up, objects = one_run(stack, Path(tmp) / f"{stack}-{run}")
                previews.append(preview)
                ups.append(up)
            print(f"{stack} ({objects} objects)")
            print("  " + _row("preview", previews))
            print("  " + _row("up", ups))
        fleet, singles = fleet_preview(Path(tmp) / "fleet")
        print(f"fleet preview of stacks/fleet.yaml with the policy pack (waves in order, each at its maxParallel): "
              f"{fleet:.1f} s; single previews with the pack: slowest {max(singles):.1f} s, sum {sum(singles):.1f} s "
              f"({', '.join(f'{s} {t:.1f}' for s, t in zip(SHIPPED_STACKS, singles, strict=True))}); "
              f"fleet / slowest {fleet / max(singles):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
