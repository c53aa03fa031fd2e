"""A Kubernetes control plane without nodes: etcd + kube-apiserver on loopback.

Certificates are generated with openssl for each run (CA, serving certificate for
127.0.0.1, an admin client certificate in `system:masters`, the service-account
signing key, and a serving certificate for the agent-sandbox webhook). Everything
lives in one temporary directory and every process is stopped on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from components.upstream import UpstreamLoader, upstream_dir
from components.validation import KUBEVIRT_OPERATOR_CRDS

from .kube import ApiError, Kube, wait_established
from .toolchain import binary

SERVICE_CIDR = "10.0.0.0/24"
AUDITED_NAMESPACE = "audit-probe"
"""The one namespace whose writes the API server's audit log records (at Metadata level, which
carries admission's audit annotations): enough for the tests that read it, and free for the
thousands of requests everything else sends."""
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "namespaces": [AUDITED_NAMESPACE], "verbs": ["create", "update", "patch"]},
              {"level": "None"}],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _sign(pki: Path, name: str, subject: str, extensions: str, days: int = 2) -> None:
    (pki / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", subject,
             "-out", f"{name}.csr", cwd=pki)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", str(days), "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=sandbox-infra-e2e-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=pki)
    serving = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    _sign(pki, "apiserver", "/CN=kube-apiserver",
          serving + "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:10.0.0.1\n")
    _sign(pki, "webhook", "/CN=agent-sandbox-webhook", serving + "subjectAltName=IP:127.0.0.1\n")
    _sign(pki, "admin", "/O=system:masters/CN=sandbox-infra-e2e-admin",
          "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


_PKI_LOCK = threading.Lock()
_PKI_TEMPLATE: list[Path] = []


def copy_pki(pki: Path) -> None:
    """A PKI for one control plane: a copy of the one this process generated first. Key
    generation is CPU-bound (four RSA keys: seconds on an idle 2-core machine, tens of seconds
    on a busy one), and every plane of a run is a throwaway on loopback, so the planes of one
    process share their keys instead of each generating its own."""
    with _PKI_LOCK:
        if not _PKI_TEMPLATE:
            template = Path(tempfile.mkdtemp(prefix="sandbox-infra-e2e-pki-")) / "pki"
            atexit.register(shutil.rmtree, template.parent, True)
            make_pki(template)
            _PKI_TEMPLATE.append(template)
    shutil.copytree(_PKI_TEMPLATE[0], pki)


@dataclass
class ControlPlane:
    workdir: Path
    server: str
    kubeconfig: Path
    pki: Path
    processes: list[subprocess.Popen]

    def client(self, field_manager: str = "sandbox-infra-e2e") -> Kube:
        return Kube(self.server, str(self.pki / "ca.crt"), str(self.pki / "admin.crt"), str(self.pki / "admin.key"),
                    field_manager)

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines; only AUDITED_NAMESPACE's writes)."""
        return self.workdir / "logs" / "audit.log"

    def env(self) -> dict[str, str]:
        """Environment for a process that should talk to this control plane only."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


def _write_kubeconfig(path: Path, server: str, pki: Path, contexts: list[str]) -> None:
    """Admin kubeconfig; every name in `contexts` is a context for this same control plane
    (the staging and prod stacks name their cluster's context in their config)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                             "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": name, "context": {"cluster": "e2e", "user": "admin"}} for name in ["e2e", *contexts]],
    }))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    # Own process group, so that stopping it never touches anything else.
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(kube: Kube, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException, ApiError):
            kube.request("GET", "/readyz", timeout=5)
            return
        time.sleep(0.25)
    raise RuntimeError(f"{kube.server}/readyz not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# The API groups of those CRDs (register_cluster_crds).
CLUSTER_CRD_GROUPS = ("cilium.io", "monitoring.coreos.com")


def uses_cluster_crds(manifests: list[dict]) -> bool:
    """Whether any of these objects needs the cluster CRDs (a plane for them registers them)."""
    return any(m["apiVersion"].split("/")[0] in CLUSTER_CRD_GROUPS for m in manifests)


def register_cluster_crds(kube: Kube) -> None:
    """The CRDs of what the stacks expect the cluster to run, not install: Cilium, whose
    CiliumNetworkPolicy the Cilium-enforced templates of prod get, and the Prometheus
    Operator, whose ServiceMonitor and PrometheusRule the stacks with `monitoring:` get. The
    mirrored upstream CRDs, so the API server validates those objects against their own schemas."""
    paths = [Path(upstream_dir(), "cilium", "ciliumnetworkpolicies.yaml"),
             *sorted(Path(upstream_dir(), "prometheus-operator", "v0.93.0").glob("monitoring.coreos.com_*.yaml"))]
    crds = [yaml.safe_load(path.read_text()) for path in paths]
    for crd in crds:
        kube.apply(crd)
    wait_established(kube, crds)


def kubevirt_crds() -> list[dict]:
    """The 19 CRDs virt-operator v1.9.0 installs (VirtualMachine, VirtualMachinePool, the
    instancetypes, ...), with KubeVirt's real schemas, read digest-verified from the mirror."""
    return UpstreamLoader().read_documents(KUBEVIRT_OPERATOR_CRDS)


def register_kubevirt_crds(kube: Kube) -> list[dict]:
    """Register them as virt-operator would once the KubeVirt CR exists (it needs a node to
    run, and this control plane has none): VM objects are then validated and pruned by the
    API server exactly as on a KubeVirt cluster, except for virt-api's admission webhooks."""
    crds = kubevirt_crds()
    for crd in crds:
        kube.apply(crd)
    wait_established(kube, crds, timeout=120)
    return crds


@contextlib.contextmanager
def control_plane(workdir: Path, contexts: list[str] | None = None, cluster_crds: bool = True) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver in `workdir`, with kubeconfig `contexts` mapped to it, and
    `cluster_crds` (register_cluster_crds). A plane for stacks that use none of them goes
    without: they make every start and every `/openapi/v2` the provider reads after a CRD
    change cost the API server more CPU (docs/benchmarks.md)."""
    pki, logs = workdir / "pki", workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    copy_pki(pki)
    processes: list[subprocess.Popen] = []
    try:
        client_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        processes.append(_start([
            str(binary("etcd")), "--name", "e2e", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{peer_port}",
            # Throwaway data: skip fsync, which dominates etcd latency on small VMs.
            "--unsafe-no-fsync", "--log-level", "warn",
        ], logs / "etcd.log"))

        port = free_port()
        server = f"https://127.0.0.1:{port}"
        (workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        processes.append(_start([
            str(binary("kube-apiserver")),
            "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(port), "--cert-dir", str(pki),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "RBAC",
            # As on real clusters (kubeadm, managed ones): privileged pods are possible in
            # principle, so that Pod Security admission is what keeps them out of tenants.
            "--allow-privileged=true",
            # No nodes, so the `kubernetes` Service's endpoints would point at nothing reachable.
            "--endpoint-reconciler-type", "none",
            "--enable-priority-and-fairness=false", "--profiling=false",
            "--audit-policy-file", str(workdir / "audit-policy.yaml"), "--audit-log-path", str(logs / "audit.log"),
        ], logs / "kube-apiserver.log"))
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, pki, contexts or [])
        plane = ControlPlane(workdir, server, kubeconfig, pki, processes)
        _wait_ready(plane.client(), processes[-1], logs / "kube-apiserver.log", timeout=120)
        if cluster_crds:
            register_cluster_crds(plane.client())
        yield plane
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir / "etcd", ignore_errors=True)
