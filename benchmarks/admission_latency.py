"""What the generated admission policies cost: admission latency of the dev stack's objects with
every policy in enforce against the same objects with the policies off.

    make bench-admission   # or: .venv/bin/python -m benchmarks.admission_latency --repeat 300

Starts etcd + kube-apiserver, creates the dev stack's namespaces and CRDs (and the VM CRDs
virt-operator would register), then sends every other object of the stack as a dry-run
create, `--repeat` times each, round-robin, with the dev stack's policies rendered with
`policy.admission: enforce` (dev's own setting is audit, which evaluates the same CEL) bound
and unbound in turn: `--blocks` alternations of off and on, so that load from elsewhere on a
shared machine hits both alike. Prints p50/p99 per object, the p99 added per object and how
the largest compares with the target (under TARGET_MS at p99 per object); the load average
before the run says whether other work shared the machine. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from components.manifests.stack import render_stack
from components.specs.loader import load_stack
from components.upstream import UpstreamLoader
from tests.e2e.admission_env import VAP_API, Activation, verdict
from tests.e2e.controlplane import control_plane
from tests.e2e.kube import Kube, Manifest, apply_all
from tests.e2e.pulumi_project import register_virt_operator_crds
from tests.e2e.toolchain import missing_reason

SETUP_KINDS = ("Namespace", "CustomResourceDefinition")
TARGET_MS = 20.0
"""Issue 14: the policies in enforce add under 20 ms at p99 to the admission of any one object."""


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def measure(kube: Kube, objects: list[Manifest], repeat: int, timings: dict[int, list[float]] | None = None,
            ) -> dict[int, list[float]]:
    """Milliseconds per dry-run create, per object index; round-robin so drift hits every object alike."""
    timings = timings if timings is not None else {i: [] for i in range(len(objects))}
    for _ in range(repeat):
        for index, manifest in enumerate(objects):
            started = time.perf_counter()
            result, _, message = verdict(kube, manifest)
            timings[index].append((time.perf_counter() - started) * 1000)
            if result != "admitted":
                raise RuntimeError(f"{manifest['kind']} {manifest['metadata']['name']} was {result}: {message}")
    return timings


def name(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    return f"{manifest['kind']} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300, help="dry-run creates per object and phase (default 300)")
    parser.add_argument("--blocks", type=int, default=10, help="alternations of policies off and on (default 10)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    reason = missing_reason("etcd", "kube-apiserver")
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    spec = load_stack("dev")
    enforced = spec.model_copy(update={"policy": spec.policy.model_copy(update={"admission": "enforce"})})
    rendered = render_stack(enforced, UpstreamLoader())
    policies = [m for m in rendered if m["apiVersion"] == VAP_API]
    setup = [m for m in rendered if m["kind"] in SETUP_KINDS]
    objects = [m for m in rendered if m["kind"] not in SETUP_KINDS and m["apiVersion"] != VAP_API]
    with tempfile.TemporaryDirectory() as workdir, control_plane(Path(workdir)) as plane:
        kube = plane.client()
        apply_all(kube, setup)
        register_virt_operator_crds(kube)
        # Existing namespaces are measured too: AlreadyExists comes after admission.
        objects += [m for m in setup if m["kind"] == "Namespace"]
        activation = Activation(kube, next(m["metadata"]["name"] for m in setup if m["kind"] == "Namespace"))
        bindings = [m for m in policies if m["kind"] == "ValidatingAdmissionPolicyBinding"]
        for manifest in policies:
            if manifest not in bindings:
                kube.create(manifest)  # unbound, a policy judges nothing
        off: dict[int, list[float]] = {i: [] for i in range(len(objects))}
        on: dict[int, list[float]] = {i: [] for i in range(len(objects))}
        measure(kube, objects, 3)  # warm caches, discovery and connections
        for _ in range(args.blocks):
            measure(kube, objects, args.repeat // args.blocks, off)
            for manifest in bindings:
                kube.create(manifest)
            activation.wait()
            measure(kube, objects, 1)  # compile the policies before timing
            measure(kube, objects, args.repeat // args.blocks, on)
            for manifest in bindings:
                kube.delete(VAP_API, manifest["kind"], manifest["metadata"]["name"])
            activation.wait()  # the canary comes after the deletions in the same watch
    print(f"admission latency, dev stack: {len(objects)} objects x {args.repeat} dry-run creates, "
          f"{sum(m['kind'] == 'ValidatingAdmissionPolicy' for m in policies)} policies in enforce vs none")
    print(f"{'object':58} {'off p50':>7} {'off p99':>7} {'on p50':>7} {'on p99':>7} {'+p50':>6} {'+p99':>7}  (ms)")
    added = []
    for index, manifest in enumerate(objects):
        row = [percentile(off[index], 50), percentile(off[index], 99), percentile(on[index], 50), percentile(on[index], 99)]
        added.append(row[3] - row[1])
        print(f"{name(manifest)[:58]:58} {row[0]:7.2f} {row[1]:7.2f} {row[2]:7.2f} {row[3]:7.2f} {row[2] - row[0]:6.2f} "
              f"{added[-1]:7.2f}")
    every_off = [t for ts in off.values() for t in ts]
    every_on = [t for ts in on.values() for t in ts]
    print(f"all objects: off p50 {percentile(every_off, 50):.2f} ms p99 {percentile(every_off, 99):.2f} ms; "
          f"enforce p50 {percentile(every_on, 50):.2f} ms p99 {percentile(every_on, 99):.2f} ms; "
          f"largest p99 added to one object: {max(added):.2f} ms ({name(objects[added.index(max(added))])})")
    print(f"target: under {TARGET_MS:.0f} ms added at p99 per object: {'met' if max(added) < TARGET_MS else 'NOT met'}")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in load_before)}, while measuring (this benchmark "
          f"included): {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
