"""A throwaway copy of the project driven by the real Pulumi CLI, against one control plane.

Each copy has its own `PULUMI_HOME` and a `file://` backend in its own directory, the
toolchain's `pulumi`, language host and `pulumi-resource-kubernetes` first on PATH, and
automatic plugin downloads off: nothing is fetched, every engine piece is the one
tools/build.sh built. Stacks and config changes happen in the copy, never in the
working tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox_policy.crossguard import pack_config

from components.manifests.common import Manifest
from components.specs.loader import load_stack
from components.upstream import upstream_dir

from .controlplane import ControlPlane, control_plane, register_kubevirt_crds, uses_cluster_crds
from .fake_node import FakeControllerManager
from .helpers import contains, is_kubevirt, lost_fields, render, require, shipped_contexts
from .kube import Kube
from .toolchain import ROOT, TOOLCHAIN_DIR

# pulumi-resource-pulumi-python runs the Python dynamic provider of the pools' readiness wait.
PULUMI = ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes", "pulumi-resource-pulumi-python")
FIXTURES = Path(__file__).parent / "stacks"
# The public, dev-only passphrase of the dev stack's secrets (see stacks/Pulumi.dev.yaml);
# the other stacks get it too, for the throwaway local backend of this run.
E2E_PASSPHRASE = "sandbox-infra-dev"


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    kube: Kube | None

    @property
    def stacks_dir(self) -> Path:
        return self.path / "stacks"

    def rendered(self, stack: str) -> list[Manifest]:
        """The stack as this project copy configures it (after the test's config changes)."""
        return render(stack, self.stacks_dir)

    def pulumi(self, *args: str, stack: str | None = "dev", check: bool = True,
               timeout: float = 900) -> subprocess.CompletedProcess:
        command = ["pulumi", *args, "--non-interactive", "--color", "never"]
        if stack is not None:
            command += ["--stack", stack]
        result = subprocess.run(command, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                        f"{result.stderr[-4000:]}")
        return result

    def policy_config(self, stack: str) -> Path:
        """The policy pack's config for `stack`, generated from its `policy:` settings as
        `sandbox-infra policy-config` generates it (the stack config is the one place)."""
        path = self.path / ".policy-config" / f"{stack}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(pack_config(load_stack(stack, self.stacks_dir).policy_context())))
        return path

    def with_pack(self, operation: str, stack: str, pack: Path, *args: str,
                  check: bool = True) -> subprocess.CompletedProcess:
        """`pulumi preview` or `up` with the policy pack in `pack`, configured from the stack's own settings."""
        return self.pulumi(operation, *args, "--policy-pack", str(pack), "--policy-pack-config",
                           str(self.policy_config(stack)), stack=stack, check=check)

    def init(self, stack: str) -> None:
        self.pulumi("stack", "init", stack=stack)
        # No kubelet runs pods here: never wait for workloads to become ready. The only
        # config change from the shipped stack file.
        self.config(stack, "cluster.waitForWorkloads", False)

    def config(self, stack: str, path: str, value: object) -> None:
        """Set one config value by path, typed as YAML would type it."""
        kind = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "string"
        self.pulumi("config", "set", "--path", path, str(value).lower() if isinstance(value, bool) else str(value),
                    "--type", kind, stack=stack)



def engine_env(path: Path, base: dict[str, str]) -> dict[str, str]:
    return {
        **base,
        "PATH": f"{TOOLCHAIN_DIR / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_HOME": str(path / ".pulumi-home"),
        "PULUMI_CONFIG_PASSPHRASE": E2E_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The file backend otherwise rewrites the whole state (2.7 MB for dev) before and after
        # every step, about 270 times in a first `up`: over half of the CLI's CPU (docs/benchmarks.md).
        # With this the engine keeps the same state in memory and writes it once when the
        # operation ends, also when it fails, so every object and the state a test reads
        # afterwards are the same. What it gives up is a checkpoint of a run killed midway: no
        # test here interrupts the engine or reads the state during a run (one that does must
        # drop this). Users keep Pulumi's default (README's walkthrough runs without it).
        "PULUMI_SKIP_CHECKPOINTS": "true",
        "UPSTREAM_DIR": str(upstream_dir()),
    }


def copy_project(path: Path) -> None:
    """What a checkout holds for `pulumi` to run: the program, its stacks, its venv and the pack."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, path / name)
    for name in ("components", "sandbox_infra", "policies"):
        (path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "stacks", path / "stacks")
    (path / ".venv").symlink_to(ROOT / ".venv")


def standalone_pack(path: Path) -> Path:
    """The policy pack as someone else's project would use it (`pulumi policy new`-style): its
    folder copied alone, with a fresh virtualenv installed from its own requirements.txt
    (PyPI, or pip's cache). Nothing of this checkout is on its path."""
    pack = path / "pack"
    shutil.copytree(ROOT / "policies", pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(pack / "venv")], check=True)
    subprocess.run([str(pack / "venv" / "bin" / "pip"), "install", "--quiet", "-r", str(pack / "requirements.txt")],
                   check=True, capture_output=True, timeout=900)
    return pack


def make_project(path: Path, plane: ControlPlane | None, stacks: tuple[str, ...],
                 extra_stack_files: tuple[Path, ...] = ()) -> Project:
    """Copy the project to `path`, log in to a local backend, init `stacks` (waitForWorkloads off).

    Without a plane the copy has no kubeconfig at all (render-only runs must not need one).
    """
    require(*PULUMI)
    copy_project(path)
    for extra in extra_stack_files:
        shutil.copy(extra, path / "stacks")
    base = plane.env() if plane else {**os.environ, "KUBECONFIG": str(path / "no-kubeconfig")}
    env = engine_env(path, base)
    state = path / ".state"
    state.mkdir()
    subprocess.run(["pulumi", "login", f"file://{state}"], cwd=path, env=env, check=True, capture_output=True)
    project = Project(path, env, plane.client() if plane else None)
    # Each stack's init touches only its own stack file and backend entry, so they run at once
    # (two `pulumi` calls each, mostly start-up time).
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(project.init, stacks))
    return project


# --- playing virt-operator ---------------------------------------------------------------
# virt-operator registers the VM CRDs once the KubeVirt CR exists; it needs a node to run,
# and this control plane has none. Its 19 real CRDs (KubeVirt v1.9.0's schemas) are
# registered instead, so the API server validates and prunes VM objects as on a KubeVirt
# cluster. `open_crd` stands in for kinds whose schema is not the point of a test.

def open_crd(group: str, plural: str, kind: str, versions: list[str], stands_in_for: str = "virt-operator") -> Manifest:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"sandbox-infra.e2e/stands-in-for": stands_in_for}},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [{"name": v, "served": True, "storage": i == 0, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                         for i, v in enumerate(versions)],
        },
    }


def register_virt_operator_crds(kube: Kube) -> None:
    register_kubevirt_crds(kube)


def sent_objects(export: dict) -> list[Manifest]:
    """What the engine sent to the API server: the inputs of every Kubernetes object in a
    stack's state (`pulumi stack export`)."""
    return [resource["inputs"] for resource in export["deployment"]["resources"]
            if resource["type"].startswith("kubernetes:") and not resource["type"].startswith("kubernetes:yaml")
            and resource.get("custom") and isinstance(resource.get("inputs", {}).get("kind"), str)]


def kubevirt_stored_as_sent(kube: Kube, export: dict) -> list[Manifest]:
    """Every KubeVirt object the engine sent, read back: fails if the API server (with
    KubeVirt's real CRDs) pruned or changed any field that was sent. Returns those objects."""
    sent = [m for m in sent_objects(export) if is_kubevirt(m)]
    for manifest in sent:
        meta = manifest["metadata"]
        stored = kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        assert lost_fields(stored, manifest) == [], f"{manifest['kind']} {meta['name']}: sent, but not stored as sent"
    return sent


def assert_every_kubevirt_object_stored_as_sent(project: Project, stack: str, export: dict) -> None:
    """After `pulumi up` of `stack`: each KubeVirt object it renders was sent and comes back as sent."""
    kubevirt = kubevirt_stored_as_sent(project.kube, export)
    print(f"{stack}: {len(kubevirt)} KubeVirt objects stored as sent: {sorted(m['kind'] for m in kubevirt)}")
    assert len(kubevirt) == sum(map(is_kubevirt, project.rendered(stack)))


def assert_every_object_stored(project: Project, stack: str) -> list[Manifest]:
    """After `pulumi up` of `stack`: every object it renders is on the API server, holding each
    field sent (a Secret's `data` aside: the render redacts its values). Returns the manifests."""
    manifests = project.rendered(stack)
    for manifest in manifests:
        meta = manifest["metadata"]
        stored = project.kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        for field in ("spec", "data", "rules", "roleRef", "subjects"):
            if field in manifest and not (manifest["kind"] == "Secret" and field == "data"):
                assert contains(stored[field], manifest[field]), f"{stack}: {manifest['kind']} {meta['name']} .{field}"
    return manifests


def uses_kubevirt(project: Project, stack: str) -> bool:
    return load_stack(stack, project.stacks_dir).kubevirt is not None


@contextlib.contextmanager
def stack_on_fresh_plane(workdir: Path, *stacks: str) -> Iterator[Project]:
    """A fresh control plane (with what a stack needs of a cluster: KubeVirt's VM CRDs, controller-manager
    chores) and a project copy with `stacks` initialised against it."""
    require("etcd", "kube-apiserver", *PULUMI)
    # Rendered once, from the shipped stack files: the copy differs only in waitForWorkloads.
    manifests = [m for stack in stacks for m in render(stack)]
    with control_plane(workdir / "plane", shipped_contexts(), uses_cluster_crds(manifests)) as plane:
        project = make_project(workdir / "project", plane, stacks)
        if any(uses_kubevirt(project, stack) for stack in stacks):
            register_virt_operator_crds(project.kube)
        namespaces = sorted({m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"})
        with FakeControllerManager(project.kube, namespaces):
            yield project
