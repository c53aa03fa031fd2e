"""A real node for the e2e control plane: containerd (runc) and the kubelet, pods that really run.

Pieces: containerd, runc, ctr and the CNI plugins from Debian (`.ci/run` installs them), the
kubelet built by tools/build.sh (k8s.io/kubernetes, the kube-apiserver's module), and the
images of images.py, imported into containerd (no registry, no pull).

Everything the node touches on the host is its own and named after the run, so that two
runs on one machine do not meet: containerd's root, state and socket, the kubelet's root
and pod log directories, the CNI bridge (`e2e<id>`), its subnet and IPAM directory, the
cgroup root (`/sandbox-infra-e2e-<id>` in every cgroup v1 hierarchy) and the ports. Teardown
deletes the pods through the API (so the kubelet stops them and CNI releases their network),
stops the kubelet and containerd by PID (their process groups), then removes what is left:
containers (`ctr`), network namespaces the run created, the bridge, mounts under the
work directory and the cgroup root. It restores the kernel settings the kubelet changes
(`vm.overcommit_memory`, `kernel.panic`, `kernel.panic_on_oops`), as the node e2e tests
of Kubernetes leave a node. These are machine-wide: a run that starts while another run's
kubelet is up saves (and later restores) that kubelet's values, so overlapping runs can
leave them set; run node tests one at a time per machine.

Choices where kind and the Kubernetes node e2e tests differ from a laptop or CI machine:
containerd's `restrict_oom_score_adj = true` (CAP_SYS_RESOURCE is not in the bounding set
of this kind of sandbox: runc otherwise fails with "can't get final child's PID from
pipe: EOF"); the kubelet with `failCgroupV1: false` (the machine is cgroup v1) and
`cgroupDriver: cgroupfs` (no systemd; containerd 1.6 does not implement the CRI's
RuntimeConfig, so the kubelet's own setting is used); the node's credentials are a client
certificate (`system:node:<name>`, group `system:nodes`) signed by the control plane's
CA, authorized by binding the built-in `system:node` ClusterRole to `system:nodes` (the
e2e API server runs RBAC only, not the Node authorizer); the kubelet serves on loopback,
its API (logs, exec) open to loopback callers only. No scheduler runs: `Binder` binds
pending pods to the one node, as kube-scheduler would with one node.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from .controlplane import ControlPlane, _sign, _start, free_port, stop
from .fake_node import _Loop
from .images import IMAGES, PAUSE, build_images, import_image
from .kube import ApiError, Kube, Manifest, is_true
from .toolchain import binary, missing_reason

CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback")
HOST_COMMANDS = ("containerd", "runc", "ctr", "ip", "mount", "umount", "go")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# What the kubelet sets when protectKernelDefaults is false; put back on teardown.
KERNEL_TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops")
NETNS_DIR = Path("/var/run/netns")


def cni_bin_dir() -> Path | None:
    return next((d for d in CNI_BIN_DIRS if all((d / p).is_file() for p in CNI_PLUGINS)), None)


def node_missing_reason() -> str | None:
    """None when a node can run here; else the exact reason (for `pytest.skip`)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append(f"the node needs root (containerd, runc, network namespaces); running as uid {os.geteuid()}")
    missing = [c for c in HOST_COMMANDS if shutil.which(c) is None]
    if missing:
        reasons.append(f"not on PATH: {', '.join(missing)} (.ci/run installs containerd, runc and "
                       "containernetworking-plugins from Debian; go builds the sandbox image)")
    if cni_bin_dir() is None:
        reasons.append(f"CNI plugins {', '.join(CNI_PLUGINS)} not found in {' or '.join(map(str, CNI_BIN_DIRS))}")
    if not (CGROUP_ROOT / "memory").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").is_file():
        reasons.append(f"no memory cgroup under {CGROUP_ROOT}")
    if reason := missing_reason("kubelet"):
        reasons.append(reason)
    return "; ".join(reasons) or None


def _cgroup_v1_hierarchies() -> list[Path]:
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        return [CGROUP_ROOT]  # cgroup v2: one hierarchy
    return [p for p in sorted(CGROUP_ROOT.iterdir()) if p.is_dir() and not p.is_symlink() and os.path.ismount(p)]


def _make_cgroup_root(name: str) -> list[Path]:
    """/<name> in every hierarchy (the kubelet refuses a cgroupRoot that does not exist)."""
    made = []
    for hierarchy in _cgroup_v1_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        made.append(path)
        if (hierarchy / "cpuset.cpus").exists():  # a new v1 cpuset starts empty: inherit the parent's
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (path / knob).write_text((hierarchy / knob).read_text())
    return made


def _remove_cgroup_tree(path: Path) -> list[str]:
    """rmdir depth-first; returns what could not be removed (a process still in it)."""
    left = []
    if not path.is_dir():
        return left
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            child.rmdir()
        except OSError as error:
            left.append(f"{child}: {error.strerror}")
    try:
        path.rmdir()
    except OSError as error:
        left.append(f"{path}: {error.strerror}")
    return left


def _mounts_under(prefix: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == str(prefix) or point.startswith(f"{prefix}/"):
            points.append(point)
    return points


class Binder:
    """The scheduler's part: bind every pending pod to the node."""

    def __init__(self, kube: Kube, node: str):
        self.kube, self.node = kube, node
        self._loop = _Loop("binder", self._watch_once)
        self._stopping = False

    def __enter__(self) -> Binder:
        self._loop.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._loop.stop()

    def _watch_once(self) -> None:
        listing = self.kube.list("v1", "Pod", fieldSelector="spec.nodeName=")
        for pod in listing["items"]:
            self._bind(pod)
        for event, pod in self.kube.watch("v1", "Pod", resource_version=listing["metadata"]["resourceVersion"],
                                          timeout=30):
            if self._stopping:
                return
            if event == "ADDED" and not pod["spec"].get("nodeName"):
                self._bind(pod)

    def _bind(self, pod: Manifest) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            return
        try:
            self.kube.bind(pod, self.node)
        except ApiError as error:
            if error.status not in (404, 409):
                raise


@dataclass
class Node:
    name: str
    plane: ControlPlane
    workdir: Path
    containerd_socket: Path
    pod_subnet: str
    gateway: str
    bridge: str
    cgroup_root: str
    digests: dict[str, str]
    """Image reference -> image ID (config digest) of the images built and imported for this run."""
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.containerd_socket)]

    @property
    def host_kernel(self) -> str:
        return os.uname().release

    def log(self, name: str) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, pod: Manifest, path: str, timeout: float = 30) -> requests.Response:
        """GET the pod's port 8888 from the host, through the bridge (pod IPs are routed there)."""
        return requests.get(f"http://{pod['status']['podIP']}:8888{path}", timeout=timeout)


CAP_SYS_RESOURCE = 24


def _bounding_set_has(capability: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> capability & 1)
    return False


def gvisor_missing_reason() -> str | None:
    if reason := missing_reason("runsc", "containerd-shim-runsc-v1"):
        return reason
    if not _bounding_set_has(CAP_SYS_RESOURCE):
        # gVisor's shim sets its own oom_score_adj to -999 unconditionally (pkg/shim/v1/manager.go,
        # oomScoreMax) and fails when it cannot; containerd's restrict_oom_score_adj does not reach it.
        return ("gVisor's containerd-shim-runsc-v1 cannot start here: it sets its oom_score_adj to -999, which "
                "needs CAP_SYS_RESOURCE, missing from this machine's bounding set (seen: 'io.containerd.runsc.v1: "
                "failed to set OOM Score on shim: write /proc/<pid>/oom_score_adj: permission denied')")
    return None


def _runsc_runtime(workdir: Path) -> str:
    """containerd's runtime `runsc` (the RuntimeClass gvisor's handler) when gVisor is built."""
    if gvisor_missing_reason():
        return ""
    config = workdir / "runsc.toml"
    # The shim reads its runsc flags from here; logs go to the work directory for the report.
    config.write_text(f"""[runsc_config]
  debug-log = "{workdir / 'logs' / 'runsc'}/"
""")
    return f"""    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "{config}"
"""


def _containerd_config(workdir: Path, socket_path: Path, cni_conf: Path, bin_dir: Path) -> str:
    return f"""version = 2
root = "{workdir / 'containerd' / 'root'}"
state = "{workdir / 'containerd' / 'state'}"
[grpc]
  address = "{socket_path}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  # CAP_SYS_RESOURCE is not in the bounding set here: without this runc fails with
  # "can't get final child's PID from pipe: EOF" (the kubelet asks for negative oom_score_adj).
  restrict_oom_score_adj = true
  sandbox_image = "{PAUSE.name}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
{_runsc_runtime(workdir)}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin_dir}"
    conf_dir = "{cni_conf}"
"""


def _wait(what: str, check, process: subprocess.Popen | None, log: Path, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: {process.args[0]} exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(Exception):
            if result := check():
                return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.25)


def _node_kubeconfig(path: Path, plane: ControlPlane, pki: Path, name: str) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "node",
        "clusters": [{"name": "e2e", "cluster": {"server": plane.server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": name, "user": {"client-certificate": str(pki / f"{name}.crt"),
                                          "client-key": str(pki / f"{name}.key")}}],
        "contexts": [{"name": "node", "context": {"cluster": "e2e", "user": name}}],
    }))


def _kubelet_config(workdir: Path, node: Node, pki: Path, port: int, healthz: int) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": "127.0.0.1", "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz,
        # cgroup v1, no systemd; containerd 1.6 has no RuntimeConfig, so this setting is the one used.
        "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupRoot": node.cgroup_root,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "podLogsDir": str(workdir / "pod-logs"), "volumePluginDir": str(workdir / "volume-plugins"),
        # Serves on loopback only (logs, exec): open to loopback callers, nobody else reaches it.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "AlwaysAllow"},
        "resolvConf": "/etc/resolv.conf",
        "kubeAPIQPS": 50, "kubeAPIBurst": 100,
        # The images are imported, never pulled: never garbage-collect them.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        # Sandboxes are small; the limit guards the machine, not a real workload.
        "maxPods": 110,
        # As kind: no node-level disk-pressure eviction (the disk is shared with whatever else
        # runs on the machine; at 13 % free the default imagefs.available<15 % evicted every pod).
        # Per-pod limits such as an emptyDir's sizeLimit are still enforced.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "0%", "nodefs.inodesFree": "0%",
                         "imagefs.available": "0%"},
        # Fast enough to see the emptyDir size limit enforced within a test: volume usage is
        # measured every minute by default.
        "evictionPressureTransitionPeriod": "5s", "volumeStatsAggPeriod": "5s",
    }


def _run_id() -> int:
    return os.getpid() % 250


@contextlib.contextmanager
def real_node(plane: ControlPlane, workdir: Path, name: str = "e2e-node") -> Iterator[Node]:
    """Start containerd and the kubelet for `plane`; yields once the Node is Ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    run = _run_id()
    bridge = f"e2e{os.getpid():x}"[:15]
    subnet, gateway = f"10.213.{run}.0/24", f"10.213.{run}.1"
    # A short socket path: unix socket paths are limited to 107 bytes.
    socket_dir = Path(f"/run/sandbox-infra-e2e-{os.getpid()}")
    socket_dir.mkdir(parents=True, exist_ok=True)
    node = Node(name, plane, workdir, socket_dir / "containerd.sock", subnet, gateway, bridge,
                f"/sandbox-infra-e2e-{os.getpid()}", {})
    tunables = {t: Path("/proc/sys", t).read_text() for t in KERNEL_TUNABLES if Path("/proc/sys", t).exists()}
    netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()
    cgroups: list[Path] = []
    kube = plane.client()
    try:
        # CNI: one bridge of this run's own, host-local IPAM with its state in the work directory.
        cni_conf = workdir / "cni"
        cni_conf.mkdir(exist_ok=True)
        (cni_conf / "10-e2e.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": f"e2e-{os.getpid()}",
            "plugins": [{
                "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(workdir / "cni-ipam")},
            }],
        }, indent=1))
        config = workdir / "containerd.toml"
        config.write_text(_containerd_config(workdir, node.containerd_socket, cni_conf, cni_bin_dir()))
        log = workdir / "logs" / "containerd.log"
        # containerd finds shims (containerd-shim-runsc-v1) and the shim finds runsc on PATH.
        node.processes.append(subprocess.Popen(
            ["containerd", "--config", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PATH": f"{binary('runsc').parent}{os.pathsep}{os.environ['PATH']}"}))
        _wait("containerd", lambda: subprocess.run([*node.ctr, "version"], capture_output=True).returncode == 0,
              node.processes[-1], log, 30)

        # Images: built here (same source, same digests), imported, never pulled.
        built = build_images(workdir / "images")
        for image, (archive, _, image_id) in built.items():
            import_image(node.ctr, archive)
            node.digests[image.name] = image_id
        assert {i.name for i in IMAGES} <= set(node.digests)

        # Credentials: a node client certificate from the control plane's CA.
        pki = plane.pki
        _sign(pki, "kubelet", f"/O=system:nodes/CN=system:node:{name}",
              "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
        kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "sandbox-infra-e2e:nodes"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]})
        kubeconfig = workdir / "kubelet.kubeconfig"
        _node_kubeconfig(kubeconfig, plane, pki, "kubelet")

        cgroups = _make_cgroup_root(node.cgroup_root.strip("/"))
        healthz = free_port()
        kubelet_config = workdir / "kubelet.yaml"
        kubelet_config.write_text(yaml.safe_dump(_kubelet_config(workdir, node, pki, free_port(), healthz)))
        log = workdir / "logs" / "kubelet.log"
        node.processes.append(_start([
            str(binary("kubelet")), f"--config={kubelet_config}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={workdir / 'kubelet'}", f"--cert-dir={workdir / 'kubelet-pki'}",
            # No --node-ip: the kubelet refuses a loopback one; it picks the host's address.
            f"--hostname-override={name}", "--v=2",
        ], log))

        def ready() -> bool:
            return is_true(kube.get("v1", "Node", name), "Ready")

        _wait(f"node {name} Ready", ready, node.processes[-1], log, 120)
        if not gvisor_missing_reason():
            kube.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
                        "handler": "runsc"})
        yield node
    finally:
        problems = _teardown(node, kube, netns_before, cgroups, tunables)
        shutil.rmtree(socket_dir, ignore_errors=True)
        if problems:
            raise RuntimeError("node teardown left: " + "; ".join(problems))


def _teardown(node: Node, kube: Kube, netns_before: set[str], cgroups: list[Path],
              tunables: dict[str, str]) -> list[str]:
    problems: list[str] = []
    kubelet = node.processes[1] if len(node.processes) > 1 else None
    if kubelet is not None and kubelet.poll() is None:
        # The kubelet stops what runs and CNI releases each pod's address and namespace.
        with contextlib.suppress(ApiError, requests.RequestException):
            for pod in kube.list("v1", "Pod", fieldSelector=f"spec.nodeName={node.name}")["items"]:
                with contextlib.suppress(ApiError):
                    kube.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"], grace_period=1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and kube.list("v1", "Pod", fieldSelector=f"spec.nodeName={node.name}")["items"]:
                time.sleep(0.5)
    for process in reversed(node.processes[1:]):
        stop(process)
    if node.processes and node.processes[0].poll() is None:
        # Whatever the kubelet did not stop: kill and remove through containerd itself.
        listing = subprocess.run([*node.ctr, "-n", "k8s.io", "containers", "ls", "-q"], capture_output=True, text=True)
        for container in listing.stdout.split():
            subprocess.run([*node.ctr, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", container], capture_output=True)
            time.sleep(0.2)
            subprocess.run([*node.ctr, "-n", "k8s.io", "tasks", "delete", "-f", container], capture_output=True)
            subprocess.run([*node.ctr, "-n", "k8s.io", "containers", "delete", container], capture_output=True)
        stop(node.processes[0])
    # Shims outlive containerd by design; ours are the ones whose socket address names our containerd.
    for pid in _our_shims(node):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if NETNS_DIR.is_dir():
        for netns in sorted(set(os.listdir(NETNS_DIR)) - netns_before):
            result = subprocess.run(["ip", "netns", "delete", netns], capture_output=True, text=True)
            if result.returncode:
                problems.append(f"netns {netns}: {result.stderr.strip()}")
    if subprocess.run(["ip", "link", "show", node.bridge], capture_output=True).returncode == 0:
        subprocess.run(["ip", "link", "delete", node.bridge], capture_output=True)
    for point in sorted(_mounts_under(node.workdir), key=len, reverse=True):
        result = subprocess.run(["umount", point], capture_output=True, text=True)
        if result.returncode:
            subprocess.run(["umount", "-l", point], capture_output=True)
    for path in cgroups:
        problems += _remove_cgroup_tree(path)
    for tunable, value in tunables.items():
        with contextlib.suppress(OSError):
            Path("/proc/sys", tunable).write_text(value)
    if left := _mounts_under(node.workdir):
        problems.append(f"mounts {left}")
    if subprocess.run(["ip", "link", "show", node.bridge], capture_output=True).returncode == 0:
        problems.append(f"interface {node.bridge}")
    return problems


def _our_shims(node: Node) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ours = str(node.containerd_socket).encode() in cmdline
            if ours and cmdline[0].endswith((b"containerd-shim-runc-v2", b"containerd-shim-runsc-v1")):
                pids.append(int(proc.name))
    return pids

