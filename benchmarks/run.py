"""Benchmarks of the program's own speed, printed as figures (never asserted).

    python -m benchmarks [--sizes 10,100] [--only render,mocks,check]

- render: config -> validated spec -> rendered objects for a synthetic fleet; objects/s and
  the peak memory of a fresh process holding every rendered object.
- mocks: the Pulumi program (`deploy`) under `pulumi.runtime.set_mocks`, against a bare
  loop registering the same number of resources (the same rendered objects, flat, plus
  as many empty components) in the same process: the component layer's overhead.
- check: the offline policy check (`sandbox_policy.check`, as `check --stack` runs it)
  over every cluster's rendered objects under that stack's settings: object-rule
  evaluations per second of CPU time.

Each figure is also taken at both fleet sizes and the growth 10 -> 100 is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

TARGETS = {
    "render objects/s": (">=", 5000.0),
    "check evaluations/s": (">=", 20000.0),
    "component overhead": ("<=", 1.2),
    "growth 10->100": ("<=", 11.0),
    "peak memory MB at 100": ("<=", 300.0),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _verdict(name: str, value: float) -> str:
    op, limit = TARGETS[name]
    ok = value >= limit if op == ">=" else value <= limit
    return f"target {op} {limit:g}: {'met' if ok else 'MISSED'}"


# --- children: each measurement in a fresh process, so peak memory is its own ----------


def _per_run(*works: Callable[[], object], min_cpu_s: float = 0.5, samples: int = 5) -> list[tuple[float, float]]:
    """(CPU seconds, wall seconds) of one call of each of `works`: the fastest of `samples`
    batches, each repeating the work until it has used `min_cpu_s`, so small and large fleets
    are timed over similar spans. The works take turns batch by batch, so that changes in
    the machine's load hit them alike. CPU time counts only this process, but other load on
    a shared machine still slows it (shared caches and cores) by up to a few tens of percent;
    the fastest batch is the least disturbed one (as `timeit` advises)."""
    results: list[list[tuple[float, float]]] = [[] for _ in works]
    for _ in range(samples):
        for work, times in zip(works, results, strict=True):
            runs, cpu, wall = 0, time.process_time(), time.perf_counter()
            while time.process_time() - cpu < min_cpu_s or runs == 0:
                work()
                runs += 1
            times.append(((time.process_time() - cpu) / runs, (time.perf_counter() - wall) / runs))
    return [min(times) for times in results]


# Growth is also measured inside the largest run: its first REFERENCE clusters, timed in turns
# with the whole fleet. Across separate runs, the machine's load differs between the two.
REFERENCE = 10


def _reference(items: list[Any], clusters: int) -> list[Any]:
    return items[:REFERENCE] if clusters > REFERENCE else []


def child_render(clusters: int) -> dict[str, Any]:
    from benchmarks.fleet import fleet, spec
    from components.manifests.agent_sandbox import CRD_FILES, INSTALL_FILES
    from components.manifests.stack import render_stack
    from components.upstream import UpstreamLoader, agent_sandbox_file, kubevirt_operator_file

    loader = UpstreamLoader(allow_download=False)
    configs = fleet(clusters)
    baseline = _rss_mb()
    started = time.process_time()
    # One-time cost of any run: read, verify and parse the pinned upstream files of each release.
    for version in sorted({c["agentSandbox"]["version"] for c in configs}):
        for path in (*CRD_FILES, *INSTALL_FILES, "extensions.controller.yaml"):
            loader.read_documents(agent_sandbox_file(version, path))
    for version in sorted({c["kubevirt"].get("version", "v1.9.0") for c in configs}):
        loader.read_documents(kubevirt_operator_file(version))
    parsed = time.process_time()
    specs = [spec(c) for c in configs]
    validated = time.process_time()
    rendered = [render_stack(s, loader) for s in specs]  # every object of the fleet held at once
    first_render = time.process_time() - validated
    peak = _rss_mb()
    del rendered
    def held(specs: list[Any]) -> Callable[[], object]:
        return lambda: [render_stack(s, loader) for s in specs]

    def each(specs: list[Any]) -> Callable[[], object]:
        # As `fleet render` works: each stack's objects are written out before the next is rendered.
        return lambda: [len(render_stack(s, loader)) for s in specs]

    first = _reference(specs, clusters)
    (cpu, wall), (each_s, _), *reference = _per_run(
        held(specs), each(specs), *([held(first), each(first)] if first else [])
    )
    return {
        "clusters": clusters,
        "objects": sum(len(render_stack(s, loader)) for s in specs),
        "vm_environments": sum(len(s.vm_runtimes()) for s in specs),
        "upstream_s": parsed - started,
        "validate_s": validated - parsed,
        "first_render_s": first_render,
        "render_s": cpu,
        "render_wall_s": wall,
        "render_each_s": each_s,
        "reference_held_s": reference[0][0] if reference else None,
        "reference_each_s": reference[1][0] if reference else None,
        "baseline_mb": baseline,
        "peak_mb": peak,
    }


def child_check(clusters: int) -> dict[str, Any]:
    """The offline policy check (`sandbox_policy.check`, what `check --stack` runs) over
    every cluster's rendered objects, each under its own stack's settings."""
    from sandbox_policy import RULES, check, evaluate

    from benchmarks.fleet import fleet, spec
    from components.manifests.stack import render_stack
    from components.upstream import UpstreamLoader

    loader = UpstreamLoader(allow_download=False)
    specs = [spec(c) for c in fleet(clusters)]
    stacks = [(render_stack(s, loader), s.policy_context()) for s in specs]
    object_rules = [r for r in RULES if r.scope == "object"]
    stack_rules = len(RULES) - len(object_rules)
    reports = [check(manifests, context) for manifests, context in stacks]
    def checked(stacks: list[Any]) -> Callable[[], object]:
        return lambda: [check(manifests, context) for manifests, context in stacks]

    first = _reference(stacks, clusters)
    (cpu, wall), (objects_only, _), *reference = _per_run(
        checked(stacks),
        lambda: [evaluate(manifests, context, object_rules) for manifests, context in stacks],
        *([checked(first)] if first else []),
    )
    return {
        "clusters": clusters,
        "objects": sum(r.objects for r in reports),
        "rules": len(RULES),
        "stack_rules": stack_rules,
        # The engine counts a stack rule as one evaluation per object it sees.
        "evaluations": sum(r.evaluations for r in reports),
        "object_evaluations": sum(r.evaluations - stack_rules * r.objects for r in reports),
        "blocking": sum(len(r.blocking) for r in reports),
        "seconds": cpu,
        "wall_s": wall,
        "object_rules_s": objects_only,
        "reference_s": reference[0][0] if reference else None,
    }


def child_mocks(clusters: int) -> dict[str, Any]:
    import pulumi
    import pulumi_kubernetes as k8s

    from benchmarks.fleet import fleet, spec
    from components.k8s import kubernetes_resource
    from components.manifests.stack import render_stack
    from components.stack import deploy
    from components.upstream import UpstreamLoader
    from tests.pulumi_harness import RecordingMonitor, run_under_mocks

    loader = UpstreamLoader(allow_download=False)
    # As the Pulumi engine hands config to the program: secrets decrypted.
    specs = [spec(c, engine=True) for c in fleet(clusters, engine=True)]

    def bare(spec: Any, components: int, reads: list[str]) -> Callable[[], None]:
        def program() -> None:
            opts = pulumi.ResourceOptions(provider=k8s.Provider(spec.cluster.name))
            for manifest in render_stack(spec, loader):
                kubernetes_resource(manifest, opts)
            for crd in reads:  # the program's lookups (KEDA's CRD), as plain reads
                k8s.apiextensions.v1.CustomResourceDefinition.get(f"read-{crd}", crd, opts=opts)
            for index in range(components):
                pulumi.ComponentResource("bench:index:Plain", f"plain-{index}", None, None)
        return program

    def timed(program: Callable[[], None]) -> tuple[float, float, list[Any]]:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        registrations = run_under_mocks(program, monitor=RecordingMonitor(record_inputs=False))
        return time.process_time() - cpu, time.perf_counter() - wall, registrations

    for version in sorted({s.agent_sandbox.version for s in specs}):  # warm-up: imports, parsed upstream files
        run_under_mocks(lambda version=version: deploy(next(s for s in specs if s.agent_sandbox.version == version), loader))
    totals = {"program_s": 0.0, "program_wall_s": 0.0, "bare_s": 0.0, "bare_wall_s": 0.0}
    registered = 0
    for s in specs:  # alternate, so that drift in machine load hits both alike
        cpu, wall, registrations = timed(lambda s=s: deploy(s, loader))
        totals["program_s"] += cpu
        totals["program_wall_s"] += wall
        registered += len(registrations)
        components = sum(1 for r in registrations if not r.custom)
        reads = [r.read_id for r in registrations if r.read_id]
        custom = sum(1 for r in registrations if r.custom and not r.read_id) - 1  # the provider
        cpu, wall, plain = timed(bare(s, components, reads))
        totals["bare_s"] += cpu
        totals["bare_wall_s"] += wall
        if len(plain) != len(registrations) or custom != len(render_stack(s, loader)):
            raise RuntimeError(f"bare loop registered {len(plain)} resources, the program {len(registrations)}")
    return {"clusters": clusters, "resources": registered, **totals}


CHILDREN = {"render": child_render, "check": child_check, "mocks": child_mocks}


def _in_child(kind: str, clusters: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--child", kind, str(clusters)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark {kind} {clusters} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


# --- report -------------------------------------------------------------------------


def report_render(sizes: list[int]) -> None:
    print("\n## Render: config -> validated spec -> Kubernetes objects (all objects kept in memory)")
    runs = [_in_child("render", n) for n in sizes]
    for r in runs:
        total = r["upstream_s"] + r["validate_s"] + r["first_render_s"]
        rate = r["objects"] / r["render_s"]
        print(f"  {r['clusters']:>4} clusters: {r['objects']:>6} objects ({r['vm_environments']} VM environments); "
              f"render {r['render_s'] * 1000:.1f} ms CPU = "
              f"{rate:,.0f} objects/s ({_verdict('render objects/s', rate)}); wall {r['render_wall_s'] * 1000:.1f} ms")
        print(f"       stack by stack, each dropped before the next (as fleet render): {r['render_each_s'] * 1000:.1f} ms CPU "
              f"= {r['objects'] / r['render_each_s']:,.0f} objects/s")
        print(f"       cold, end to end {total:.3f}s CPU = {r['objects'] / total:,.0f} objects/s (one-time upstream parse "
              f"{r['upstream_s']:.3f}s, config validation + sizing {r['validate_s']:.3f}s, first render "
              f"{r['first_render_s']:.3f}s); peak RSS {r['peak_mb']:.0f} MB (after imports {r['baseline_mb']:.0f} MB)")
    _growth(runs, lambda r: r["render_s"], "render time, all objects held", "reference_held_s")
    _growth(runs, lambda r: r["render_each_s"], "render time, stack by stack", "reference_each_s")
    _growth(runs, lambda r: r["upstream_s"] + r["validate_s"] + r["first_render_s"], "end-to-end time")
    big = max(runs, key=lambda r: r["clusters"])
    if big["clusters"] >= 100:
        print(f"  peak memory at {big['clusters']} clusters: {big['peak_mb']:.0f} MB "
              f"({_verdict('peak memory MB at 100', big['peak_mb'])})")


def report_check(sizes: list[int]) -> None:
    print("\n## Offline policy check: every rule over every cluster's rendered objects (sandbox_policy.check)")
    runs = [_in_child("check", n) for n in sizes]
    for r in runs:
        rate = r["object_evaluations"] / r["seconds"]
        print(f"  {r['clusters']:>4} clusters: {r['objects']} objects, {r['rules']} rules "
              f"({r['stack_rules']} stack-level), {r['blocking']} blocking findings; check {r['seconds'] * 1000:.1f} ms CPU "
              f"(wall {r['wall_s'] * 1000:.1f} ms)")
        print(f"       {r['object_evaluations']:,} object-rule evaluations / whole check = {rate:,.0f} evaluations/s "
              f"({_verdict('check evaluations/s', rate)}); object rules alone "
              f"{r['object_evaluations'] / r['object_rules_s']:,.0f}/s; engine count incl. stack rules "
              f"{r['evaluations']:,} = {r['evaluations'] / r['seconds']:,.0f}/s")
    _growth(runs, lambda r: r["seconds"], "check time", "reference_s")


def report_mocks(sizes: list[int]) -> None:
    print("\n## Pulumi program under mocks vs a bare loop registering as many resources")
    runs = [_in_child("mocks", n) for n in sizes]
    for r in runs:
        ratio = r["program_s"] / r["bare_s"]
        print(f"  {r['clusters']:>4} clusters: {r['resources']} resources; program {r['program_s']:.2f}s CPU "
              f"({r['program_s'] / r['resources'] * 1000:.2f} ms/resource), bare loop {r['bare_s']:.2f}s CPU: "
              f"ratio {ratio:.2f} ({_verdict('component overhead', ratio)}); wall {r['program_wall_s']:.2f}s vs "
              f"{r['bare_wall_s']:.2f}s = {r['program_wall_s'] / r['bare_wall_s']:.2f}")
    _growth(runs, lambda r: r["program_s"], "program time")


def _growth(
    runs: list[dict[str, Any]], seconds: Callable[[dict[str, Any]], float], what: str, reference: str | None = None
) -> None:
    """Growth from the smallest to the largest run; with `reference`, also within the largest
    run (its first REFERENCE clusters timed in turns with the whole fleet)."""
    if len(runs) < 2:
        return
    small, big = runs[0], runs[-1]
    growth = seconds(big) / seconds(small)
    scale = big["clusters"] / small["clusters"]
    print(f"  growth {small['clusters']} -> {big['clusters']} clusters ({scale:g}x): {what} x{growth:.2f} "
          f"across runs ({_verdict('growth 10->100', growth * 10 / scale)})")
    if reference and big.get(reference):
        inside = seconds(big) / big[reference]
        scale = big["clusters"] / REFERENCE
        print(f"      within the {big['clusters']}-cluster run, against its first {REFERENCE} clusters in turns: "
              f"x{inside:.2f} ({_verdict('growth 10->100', inside * 10 / scale)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="fleet sizes in clusters (default 10,100)")
    parser.add_argument("--only", default="render,check,mocks")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CLUSTERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, clusters = args.child
        print(json.dumps(CHILDREN[kind](int(clusters))))
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    started = time.perf_counter()
    print(f"# sandbox-infra benchmarks, fleets of {' and '.join(map(str, sizes))} clusters, Python {sys.version.split()[0]}")
    reports = {"render": report_render, "check": report_check, "mocks": report_mocks}
    for name in args.only.split(","):
        reports[name](sizes)
    print(f"\n(total {time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
