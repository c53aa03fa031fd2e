"""A local control plane to try `pulumi preview/up` against, until Ctrl-C.

    make local-cluster      # or: .venv/bin/python -m tests.e2e.local_cluster [--dir .cache/local-cluster]

The same control plane the e2e tests start (etcd + kube-apiserver on loopback, built by
`make toolchain`), with the stand-ins they use for what needs nodes: the namespace and
garbage-collection chores of kube-controller-manager, and the real VM CRDs virt-operator
would register (KubeVirt v1.9.0's 19). No kubelet runs pods, so stacks need `cluster.waitForWorkloads: false` here.
The admin kubeconfig is written to `<dir>/kubeconfig`; every kubeconfig context the
shipped stacks name maps to this control plane too.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import threading
from pathlib import Path

from .controlplane import control_plane
from .fake_node import FakeControllerManager
from .helpers import SHIPPED_STACKS, render, shipped_contexts
from .pulumi_project import register_virt_operator_crds
from .toolchain import ROOT, missing_reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / ".cache" / "local-cluster",
                        help="where the certificates, data and kubeconfig go (default: .cache/local-cluster)")
    args = parser.parse_args(argv)
    reason = missing_reason("etcd", "kube-apiserver")
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    workdir = args.dir.resolve()
    if workdir.exists() and any(workdir.iterdir()):
        print(f"error: {workdir} is not empty (another local cluster? remove it first)", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    manifests = [m for stack in SHIPPED_STACKS for m in render(stack)]
    namespaces = sorted({m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"})
    # Every kind a stack creates: `pulumi destroy` deletes in the foreground, which only a
    # garbage collector completes (without it, destroy waits on the first SandboxWarmPool).
    kinds = sorted({(m["apiVersion"], m["kind"]) for m in manifests})
    with control_plane(workdir, shipped_contexts()) as plane:
        register_virt_operator_crds(plane.client())
        with FakeControllerManager(plane.client(), namespaces, kinds):
            print(f"API server {plane.server} is up. In another shell:\n\n"
                  f"    export KUBECONFIG={plane.kubeconfig}\n\nCtrl-C stops it and deletes {workdir}.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
