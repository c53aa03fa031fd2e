"""`doctor`: what a stack needs before `pulumi preview`/`up`, checked before a long run fails.

Each check says ok, warn, fail (a blocker: the command exits 1) or skip, and for every
warn or fail what to do about it. Without a cluster (`--offline`, or no kubeconfig)
the local checks still run: tools, stack config, upstream pins, placeholder images.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from sandbox_policy.errors import PolicyInputError
from sandbox_policy.workloads import images, pod_specs

from components.manifests.kubevirt import KUBEVIRT_CRD
from components.manifests.stack import render_stack
from components.prerequisites import required_crds
from components.specs.kubevirt import KubeVirtSpec
from components.specs.loader import load_stack
from components.specs.secrets import SecretValue
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader, upstream_dir

from .output import document, style_by, table
from .versions import installed, pinned_requirements

Status = Literal["ok", "warn", "fail", "skip"]
# Registries that only exist in examples: an image from one never pulls.
PLACEHOLDER_IMAGE = re.compile(r"^(ghcr\.io/example/|([\w.-]+\.)?example\.(com|org|net)[/:]|registry\.example/)")
# The packages whose version decides how the program and the engine behave.
KEY_PACKAGES = ("pulumi", "pulumi-kubernetes", "pulumi-policy", "pydantic", "click", "rich")
MIN_PYTHON = (3, 11)


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def render(checks: list[Check], fmt: str) -> str:
    if fmt == "table":
        return table(("check", "status", "detail", "fix"), [(c.name, c.status, c.detail, c.fix) for c in checks],
                     style_by(1))
    return document({"passed": not any(c.status == "fail" for c in checks), "checks": [asdict(c) for c in checks]}, fmt)


def run(stack: str, stacks_dir: Path, offline: bool) -> list[Check]:
    checks = [_python(), _packages(), _pulumi_cli(offline), _provider_plugin()]
    try:
        spec = load_stack(stack, stacks_dir)
    except PolicyInputError as error:
        return [*checks, Check("stack config", "fail", str(error).splitlines()[0], "fix the stack config as the message says")]
    checks.append(Check("stack config", "ok", f"{stack}: {spec.cluster.environment}, cluster {spec.cluster.name}"))
    loader = UpstreamLoader()
    try:
        manifests = render_stack(spec, loader)
    except PolicyInputError as error:
        checks.append(Check("upstream pins", "fail", str(error).splitlines()[0],
                            f"point UPSTREAM_DIR at a mirror of the pinned files (now {upstream_dir()}), or allow the download"))
        return checks
    checks.append(_upstream(loader))
    checks.append(_images(spec, manifests))
    cluster = _connect(spec, offline)
    checks.append(cluster.check)
    checks += _cluster_checks(spec, manifests, cluster.kube)
    return checks


# --- local -----------------------------------------------------------------------------


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "fail", version, f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer (make setup)")
    return Check("python", "ok", version)


def _packages() -> Check:
    pins = pinned_requirements()
    wrong = [f"{name} {installed(name) or 'missing'} (pinned {pins[name]})"
             for name in KEY_PACKAGES if name in pins and installed(name) != pins[name]]
    if wrong:
        return Check("python packages", "warn", "; ".join(wrong), "make setup (installs the pinned versions into .venv)")
    return Check("python packages", "ok", ", ".join(f"{name} {pins.get(name)}" for name in KEY_PACKAGES))


def _pulumi_cli(offline: bool) -> Check:
    path = shutil.which("pulumi")
    if path is None:
        return Check("pulumi CLI", "warn" if offline else "fail", "not on PATH (needed for preview, up, fleet preview|up)",
                     "install it (https://www.pulumi.com/docs/install/) or build it: make toolchain")
    try:
        found = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Check("pulumi CLI", "fail", f"{path} does not run: {error}", "reinstall the Pulumi CLI")
    return Check("pulumi CLI", "ok", f"{found.stdout.strip() or '?'} ({path})")


def _provider_plugin() -> Check:
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    on_path = shutil.which("pulumi-resource-kubernetes")
    installed_plugins = sorted(p.name for p in (home / "plugins").glob("resource-kubernetes-v*") if p.is_dir())
    if on_path or installed_plugins:
        return Check("kubernetes provider plugin", "ok", on_path or ", ".join(installed_plugins))
    if os.environ.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "").lower() in ("1", "true"):
        return Check("kubernetes provider plugin", "fail", "not found and automatic plugin downloads are disabled",
                     "make toolchain (builds pulumi-resource-kubernetes), and put its bin/ on PATH")
    return Check("kubernetes provider plugin", "warn", "not installed; the engine downloads it on first use",
                 "pulumi plugin install resource kubernetes, or make toolchain on machines without downloads")


def _upstream(loader: UpstreamLoader) -> Check:
    mirror = upstream_dir()
    where = f"mirror {mirror}" if mirror.is_dir() else f"no mirror at {mirror}: downloaded or cached"
    if loader.warnings:
        return Check("upstream pins", "warn", f"sha256 verified ({where}); " + "; ".join(loader.warnings),
                     "see the warning; pins live in components/upstream.py")
    return Check("upstream pins", "ok", f"every pinned file matches its sha256 ({where})")


def _images(spec: StackSpec, manifests: list[dict]) -> Check:
    placeholders = sorted({image for m in manifests for _, image in images(m) if PLACEHOLDER_IMAGE.match(image)})
    if not placeholders:
        return Check("images", "ok", "no placeholder images")
    if spec.cluster.environment == "dev":
        return Check("images", "ok", f"placeholder images, allowed in dev: {', '.join(placeholders)}")
    return Check("images", "fail", f"placeholder images in a {spec.cluster.environment} stack: {', '.join(placeholders)}",
                 "set the templates' and runtimes' image to one your registry serves (pinned by digest)")


# --- the cluster ---------------------------------------------------------------------------


class KubeUnreachable(Exception):
    pass


class Kube:
    """Read-only GETs from a kubeconfig context, loaded by the official Kubernetes client's
    config loader, as kubectl would: client certificates, bearer tokens and token files,
    exec plugins (EKS `aws eks get-token`, GKE `gke-gcloud-auth-plugin`, AKS `kubelogin`)
    and auth-provider entries (OIDC)."""

    def __init__(self, kubeconfig: Path, context: str | None) -> None:
        # Imported here: the client takes a while to import, and only doctor's cluster checks need it.
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        try:
            contexts, current = config.list_kube_config_contexts(str(kubeconfig))
        except (ConfigException, yaml.YAMLError) as error:  # the first line only: YAML errors quote the file
            raise KubeUnreachable(f"not a usable kubeconfig: {_first_line(error)}") from None
        name = context or (current or {}).get("name")
        if name not in {entry.get("name") for entry in contexts or []}:
            raise KubeUnreachable(f"context {name!r} is not in {kubeconfig}")
        # The loader logs (rather than raises) a failing exec plugin and goes on without
        # credentials; catch that, so the check says why instead of a bare 401.
        failures = _Failures()
        logging.getLogger().addHandler(failures)
        try:
            self.api = config.new_client_from_config(str(kubeconfig), context=name, persist_config=False)
        except (ConfigException, OSError, ValueError) as error:
            raise KubeUnreachable(f"context {name!r}: {_first_line(error)}") from None
        finally:
            logging.getLogger().removeHandler(failures)
        if failures.messages:
            raise KubeUnreachable(f"context {name!r}: credentials plugin failed: {failures.messages[0]}")
        self.context, self.server = name, self.api.configuration.host.rstrip("/")

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, None when it does not exist."""
        import urllib3

        try:
            request = self.api.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                               auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=10)
            response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeUnreachable(f"{self.server}: {type(error).__name__}: {str(error)[-200:]}") from None
        if response.status == 404:
            return None
        if response.status >= 400:
            raise KubeUnreachable(f"{self.server}{path}: HTTP {response.status} {response.reason or ''}".rstrip())
        return json.loads(response.data)


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(_first_line(record.getMessage()))


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


@dataclass
class Connection:
    check: Check
    kube: Kube | None


def _kubeconfig(spec: StackSpec) -> tuple[Path | None, str]:
    """The kubeconfig the stack's provider uses, and how it was found."""
    configured = spec.cluster.provider.kubeconfig
    if isinstance(configured, str):
        return Path(configured).expanduser(), "cluster.provider.kubeconfig"
    note = " (the stack's kubeconfig is a secret; using the ambient one)" if isinstance(configured, SecretValue) else ""
    for candidate in (os.environ.get("KUBECONFIG") or "").split(os.pathsep):
        if candidate and Path(candidate).is_file():
            return Path(candidate), f"$KUBECONFIG{note}"
    default = Path.home() / ".kube" / "config"
    return (default if default.is_file() else None), f"~/.kube/config{note}"


def _connect(spec: StackSpec, offline: bool) -> Connection:
    name = "kube context"
    if offline:
        return Connection(Check(name, "skip", "--offline"), None)
    path, source = _kubeconfig(spec)
    fix = "set KUBECONFIG (or cluster.provider.kubeconfig/context) to the stack's cluster, or run with --offline"
    if path is None or not path.is_file():
        return Connection(Check(name, "fail", f"no kubeconfig ({source})", fix), None)
    try:
        kube = Kube(path, spec.cluster.provider.context)
        version = kube.get("/version") or {}
    except (KubeUnreachable, OSError, ValueError, yaml.YAMLError) as error:
        return Connection(Check(name, "fail", f"{path}: {error}", fix), None)
    return Connection(Check(name, "ok", f"{kube.context} at {kube.server}: server {version.get('gitVersion', '?')} ({source})"),
                      kube)


def _named_classes(manifests: list[dict], field: str, kind: str) -> list[str]:
    """Classes the stack's pods name but does not create itself."""
    named = {str(pod.spec[field]) for m in manifests for pod in pod_specs(m) if pod.spec.get(field)}
    created = {m["metadata"]["name"] for m in manifests if m.get("kind") == kind}
    return sorted(named - created)


def _exists_each(kube: Kube | None, title: str, names: list[str], path: Callable[[str], str], fix: str) -> Check:
    if not names:
        return Check(title, "ok", "none needed")
    if kube is None:
        return Check(title, "skip", f"needs the cluster: {', '.join(names)}")
    try:
        missing = [name for name in names if kube.get(path(name)) is None]
    except KubeUnreachable as error:
        return Check(title, "fail", str(error), "check the cluster's connection")
    if missing:
        return Check(title, "fail", f"missing: {', '.join(missing)}", fix)
    return Check(title, "ok", f"present: {', '.join(names)}")


def _cluster_checks(spec: StackSpec, manifests: list[dict], kube: Kube | None) -> list[Check]:
    checks = [
        _exists_each(kube, f"CRDs ({installer})", crds,
                     lambda name: f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                     f"install {installer} first, or let this stack manage it (install: managed)")
        for installer, crds in required_crds(spec).items()
    ]
    checks.append(_exists_each(kube, "RuntimeClasses", _named_classes(manifests, "runtimeClassName", "RuntimeClass"),
                               lambda name: f"/apis/node.k8s.io/v1/runtimeclasses/{name}",
                               "install the sandbox runtime (gVisor, Kata) and its RuntimeClass on the nodes, "
                               "or change the template's runtimeClassName"))
    checks.append(_exists_each(kube, "PriorityClasses", _named_classes(manifests, "priorityClassName", "PriorityClass"),
                               lambda name: f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}",
                               "create the PriorityClass, or drop priorityClassName"))
    if spec.kubevirt is not None:
        checks.append(_kvm(spec.kubevirt, spec.cluster.environment, kube))
    return checks


KVM_RESOURCE = "devices.kubevirt.io/kvm"


def _kvm(kubevirt: KubeVirtSpec, environment: str, kube: Kube | None) -> Check:
    name = "KubeVirt /dev/kvm"
    if kubevirt.use_emulation:
        status: Status = "warn" if environment == "prod" else "ok"
        return Check(name, status, "software emulation (no /dev/kvm needed; VMs are slow)",
                     "turn kubevirt.useEmulation off on clusters whose nodes have /dev/kvm" if status == "warn" else "")
    fix = "run VMs on nodes with /dev/kvm (bare metal or nested virtualization), or set kubevirt.useEmulation: true"
    if kube is None:
        local = "present" if Path("/dev/kvm").exists() else "absent"
        return Check(name, "skip", f"emulation off; nodes not checked without the cluster (this machine's /dev/kvm: {local})")
    try:
        nodes = (kube.get("/api/v1/nodes") or {}).get("items", [])
        operator = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{KUBEVIRT_CRD}")
    except KubeUnreachable as error:
        return Check(name, "fail", str(error), "check the cluster's connection")
    with_kvm = [n["metadata"]["name"] for n in nodes if str(n.get("status", {}).get("allocatable", {}).get(KVM_RESOURCE, "0")) != "0"]
    if with_kvm:
        return Check(name, "ok", f"emulation off; {len(with_kvm)} node(s) offer {KVM_RESOURCE}")
    if operator is None:
        # virt-handler advertises the resource once KubeVirt runs: before the first `up` nothing can tell.
        return Check(name, "warn", f"emulation off; KubeVirt is not running yet, so no node advertises {KVM_RESOURCE}", fix)
    return Check(name, "fail", f"emulation off and none of {len(nodes)} node(s) offers {KVM_RESOURCE}", fix)
