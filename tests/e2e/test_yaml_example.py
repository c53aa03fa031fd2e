"""examples/yaml-warm-pool: a Pulumi YAML program using the sandbox-infra component package
(provider/), through the real engine and the YAML language host built by tools/build.sh,
against the live API server: the components work from a language other than Python.

Also: a waiting pool makes `up` wait (and fail at its readyTimeout with one message) through
the package's own resource; a VmEnvironment takes its cloud-init and SSH keys as secrets, which
stay secrets; `pulumi package get-schema provider` prints exactly the checked-in
provider/schema.json, and bad input written in YAML fails `preview` with one clear message,
never a Python stack.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from sandbox_infra.package import SCHEMA_FILE

from .controller import agent_sandbox_controller
from .controlplane import ControlPlane, register_kubevirt_crds
from .fake_node import FakeControllerManager, FakeKubelet
from .helpers import ready_timeout_message, render, require
from .pulumi_project import PULUMI, engine_env
from .toolchain import ROOT, binary

EXAMPLE = "yaml-warm-pool"
NAMESPACES = ["team-a", "agent-sandbox-system"]
API_VERSION = "extensions.agents.x-k8s.io/v1beta1"


@dataclass
class YamlProject:
    path: Path
    env: dict[str, str]

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args, "--non-interactive", "--color", "never"], cwd=self.path,
                                env=self.env, capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def edit(self, old: str, new: str) -> None:
        """Change the program (Pulumi.yaml) in this copy: `old` must occur exactly once."""
        program = self.path / "Pulumi.yaml"
        text = program.read_text()
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the example"
        program.write_text(text.replace(old, new))


def seed_plugin_cache(env: dict[str, str]) -> None:
    """Before it runs a package's plugin, the CLI installs the plugin's dependencies: every Pulumi
    package in its virtualenv (kubernetes, command). Nothing may be downloaded here, so the
    throwaway PULUMI_HOME gets them as tools/build.sh built them: kubernetes is the toolchain's
    plugin, under the version the SDK asks for (as the other e2e tests run it, from PATH). The
    command provider, which no component uses, gets an empty entry: anything that ran it would
    fail loudly."""
    for dist, plugin in (("pulumi_kubernetes", "kubernetes"), ("pulumi_command", "command")):
        version = metadata.version(dist)
        if plugin == "kubernetes":
            subprocess.run(["pulumi", "plugin", "install", "resource", plugin, version, "--file",
                            str(binary("pulumi-resource-kubernetes"))], env=env, check=True, capture_output=True)
        else:
            (Path(env["PULUMI_HOME"]) / "plugins" / f"resource-{plugin}-v{version}").mkdir(parents=True)


def yaml_project(workdir: Path, plane: ControlPlane) -> YamlProject:
    require(*PULUMI, "pulumi-language-yaml")
    path = workdir / "examples" / EXAMPLE
    shutil.copytree(ROOT / "examples" / EXAMPLE, path)
    # As in the checkout: Pulumi.yaml names ../../provider, whose PulumiPlugin.yaml names ../.venv.
    (workdir / "provider").symlink_to(ROOT / "provider")
    (workdir / ".venv").symlink_to(ROOT / ".venv")
    env = engine_env(path, plane.env())
    seed_plugin_cache(env)
    state = workdir / "state"
    state.mkdir()
    project = YamlProject(path, env)
    project.pulumi("login", f"file://{state}")
    project.pulumi("stack", "init", "e2e")
    # No kubelet runs pods here: never wait for workloads to become ready.
    project.pulumi("config", "set", "waitForWorkloads", "false")
    return project


# --- the schema, and input a preview refuses ------------------------------------------------
# First in the module: on the plane as the example finds a cluster (the deploying tests below
# then run the agent-sandbox controller, which repoints the CRDs' conversion webhook).

@pytest.fixture(scope="module")
def offline(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> YamlProject:
    """A second copy, never deployed: previews only."""
    return yaml_project(tmp_path_factory.mktemp("yaml-preview"), plane)


def test_get_schema_prints_the_checked_in_schema(offline: YamlProject) -> None:
    printed = offline.pulumi("package", "get-schema", str(ROOT / "provider")).stdout
    assert json.loads(printed) == json.loads(SCHEMA_FILE.read_text()), \
        "provider/schema.json is not what the package serves: run `make schema`"


BAD_INPUTS = {
    # YAML's type checker, against the package schema: before any component runs.
    "unknown field": (("        replicas: ${replicas}", "        replica: ${replicas}"),
                      ["replica", "Existing properties are"]),
    "wrong type": (("        replicas: ${replicas}", "        replicas: three"),
                   ["replicas: Cannot assign type 'string' to type 'integer'"]),
    # The component's own check: its spec names a template other than the one passed.
    "pool naming a missing template": (("        name: python\n        replicas:", "        name: python\n"
                                        "        template: pyhton\n        replicas:"),
                                       ["spec.template = 'pyhton' does not match the template passed ('python')"]),
    # ... and a pool passed a template the program does not declare.
    "pool passed an undeclared template": (("      template: ${python}", "      template: ${pyhton}"),
                                           ["pyhton"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_preview_with_one_clear_message(offline: YamlProject, case: str) -> None:
    (old, new), expected = BAD_INPUTS[case]
    program = offline.path / "Pulumi.yaml"
    original = program.read_text()
    try:
        offline.edit(old, new)
        result = offline.pulumi("preview", check=False)
    finally:
        program.write_text(original)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: the preview succeeded:\n{output[-3000:]}"
    for text in expected:
        assert text in output, f"{case}: {text!r} not in the preview's output:\n{output[-3000:]}"
    for stack_trace in ("Traceback", 'File "', "panic:", "goroutine"):
        assert stack_trace not in output, f"{case}: a stack trace in the preview's output:\n{output[-3000:]}"
    print(f"{case}: {' | '.join(line.strip() for line in output.splitlines() if 'error' in line.lower())[:600]}")


@pytest.fixture(scope="module")
def deployed(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[YamlProject]:
    project = yaml_project(tmp_path_factory.mktemp("yaml"), plane)
    # The cluster as a platform team names it: in the stack's config of the Kubernetes provider
    # (a secret), not an ambient kubeconfig, which leads nowhere here. The pool's wait must read
    # the cluster the pool was created in (test_up_waiting_...).
    project.env["KUBECONFIG"] = str(project.path / "no-such-kubeconfig")
    project.pulumi("config", "set", "--secret", "kubernetes:kubeconfig", plane.kubeconfig.read_text())
    kinds = sorted({(m["apiVersion"], m["kind"]) for m in render("dev")})
    # destroy deletes in the foreground and waits for namespaces to go: both need
    # kube-controller-manager's garbage collector and namespace controller.
    with FakeControllerManager(plane.client(), NAMESPACES, kinds):
        project.pulumi("up", "--yes")
        yield project


def test_up_creates_the_install_tenant_template_and_pool(deployed: YamlProject, plane: ControlPlane) -> None:
    out = json.loads(deployed.pulumi("stack", "output", "--json").stdout)
    assert out == {"namespace": "team-a", "claimerRole": "sandbox-claimer", "template": "python", "warmPool": "python",
                   "replicas": 3, "apiVersion": API_VERSION}
    kube = plane.client()
    assert kube.get("v1", "Namespace", "team-a")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "restricted"
    assert kube.get("v1", "ResourceQuota", "sandbox-quota", "team-a")
    template = kube.get(API_VERSION, "SandboxTemplate", "python", "team-a")
    container = template["spec"]["podTemplate"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/sandboxes/python:3.12"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pool = kube.get(API_VERSION, "SandboxWarmPool", "python", "team-a")
    assert pool["spec"]["replicas"] == 3  # an integer again, though every number crosses the wire as a float
    assert kube.get("apps/v1", "Deployment", "agent-sandbox-controller", "agent-sandbox-system")
    # The components' children are the Kubernetes objects, under the component resources.
    export = json.loads(deployed.pulumi("stack", "export").stdout)
    types = {r["type"] for r in export["deployment"]["resources"]}
    assert {"sandbox-infra:index:AgentSandbox", "sandbox-infra:index:Tenant", "sandbox-infra:index:SandboxTemplate",
            "sandbox-infra:index:WarmPool"} <= types


# --- the pool's readiness wait, from YAML ------------------------------------------------
# The package's own provider serves the wait (components/pool_readiness.py: PackagePoolReadiness),
# with the same messages as the Python program's dynamic resource (tests/e2e/test_pool_readiness.py).

BOUND = 10  # the shortest readyTimeout allowed
POOL_WAITS = ("      template: ${python}\n      waitForWorkloads: ${waitForWorkloads}",
              "      template: ${python}\n      waitForWorkloads: true")


def test_up_waiting_for_a_pool_no_kubelet_runs_fails_at_its_ready_timeout(deployed: YamlProject) -> None:
    # Only the pool waits: the install's controller Deployment has no kube-controller-manager here.
    deployed.edit(*POOL_WAITS)
    deployed.pulumi("config", "set", "readyTimeout", f"{BOUND}s")
    message, output = ready_timeout_message(lambda: deployed.pulumi("up", "--yes", "--skip-preview", check=False), BOUND)
    assert message == (f"error: PoolNotReady: warm pool team-a/python (template python) is not ready after {BOUND} s: "
                       "0 of 3 replicas ready; no pod of the pool yet. If it only needs longer, raise the pool's "
                       "readyTimeout (at most 1h)"), message
    for stack_trace in ("Traceback", 'File "', "panic:", "goroutine"):
        assert stack_trace not in output, output[-4000:]


@pytest.fixture(scope="module")
def pods_run(deployed: YamlProject, plane: ControlPlane) -> Iterator[None]:
    """From here on, the real agent-sandbox controller makes the pool's pods and the stand-in
    kubelet runs them (until the module ends: destroy needs the controller's webhook too)."""
    with agent_sandbox_controller(plane), FakeKubelet(plane.client()):
        yield


def test_up_waits_for_the_pool_and_succeeds_once_its_pods_run(deployed: YamlProject, pods_run: None) -> None:
    result = deployed.pulumi("up", "--yes", "--skip-preview")
    assert re.search(r"PoolReadiness \S+ created", result.stdout), result.stdout[-4000:]
    export = deployed.pulumi("stack", "export").stdout
    (wait,) = [r for r in json.loads(export)["deployment"]["resources"]
               if r["type"] == "sandbox-infra:index:PoolReadiness"]
    assert wait["id"] == "team-a/python" and wait["outputs"]["replicas"] == 3
    assert wait["parent"].endswith("sandbox-infra:index:WarmPool::pool")
    # It read the cluster with the Kubernetes provider's kubeconfig (the ambient one leads nowhere
    # here), which stays a secret in the state: encrypted, its contents nowhere in plain text.
    assert "ciphertext" in wait["inputs"]["kubeconfig"], wait["inputs"]
    assert "certificate-authority" not in export and "client-key" not in export


def test_a_second_up_changes_nothing(deployed: YamlProject) -> None:
    """After the tests above, also: an unchanged pool is not waited for again."""
    deployed.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")


def test_destroy_keeps_the_crds(deployed: YamlProject, plane: ControlPlane, pods_run: None) -> None:
    deployed.pulumi("destroy", "--yes", "--skip-preview")
    kube = plane.client()
    for crd in ("sandboxtemplates.extensions.agents.x-k8s.io", "sandboxwarmpools.extensions.agents.x-k8s.io",
                "sandboxes.agents.x-k8s.io"):
        assert kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd), f"destroy deleted {crd}"
    assert not kube.exists(API_VERSION, "SandboxWarmPool", "python", "team-a")
    assert not kube.exists("apps/v1", "Deployment", "agent-sandbox-controller", "agent-sandbox-system")


# --- VmEnvironment from YAML: a spec with secrets ---------------------------------------------

CLOUD_INIT = "#cloud-config\nchpasswd: {list: 'agent:e2e-not-a-real-password', expire: false}\n"
SSH_KEYS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eE2eE2eE2eE2eE2eE2eE2eE2eE2eE2eE2eE2eE2e e2e@example.com"
VM_PROGRAM = f"""\
name: yaml-vm
runtime: yaml
packages:
  sandbox-infra: {ROOT / "provider"}
config:
  cloudInit:
    type: string
    secret: true
  sshKeys:
    type: string
    secret: true
resources:
  team:
    type: sandbox-infra:Tenant
    properties:
      spec:
        name: team-vm
  devbox:
    type: sandbox-infra:VmEnvironment
    properties:
      tenant: ${{team}}
      spec:
        id: devbox
        executionKind: kubevirt-vm
        vmConfig:
          containerDiskImage: quay.io/containerdisks/fedora:40
          cpu: 2
          memory: 2Gi
          cloudInitTemplate: ${{cloudInit}}
          sshAuthorizedKeys: ${{sshKeys}}
        warm:
          replicas: 1
outputs:
  service: ${{devbox.service}}
  kind: ${{devbox.kind}}
"""


def test_a_vm_environment_from_yaml_keeps_its_cloud_init_and_keys_secret(plane: ControlPlane,
                                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    register_kubevirt_crds(plane.client())  # as virt-operator would; idempotent
    path = tmp_path_factory.mktemp("yaml-vm")
    (path / "Pulumi.yaml").write_text(VM_PROGRAM)
    env = engine_env(path, plane.env())
    seed_plugin_cache(env)
    (path / "state").mkdir()
    project = YamlProject(path, env)
    project.pulumi("login", f"file://{path / 'state'}")
    project.pulumi("stack", "init", "e2e")
    project.pulumi("config", "set", "--secret", "cloudInit", CLOUD_INIT)
    project.pulumi("config", "set", "--secret", "sshKeys", SSH_KEYS)
    with FakeControllerManager(plane.client(), ["team-vm"]):
        project.pulumi("up", "--yes", "--skip-preview")
    out = json.loads(project.pulumi("stack", "output", "--json").stdout)
    assert out == {"service": "devbox", "kind": "VirtualMachinePool"}
    kube = plane.client()
    pool = kube.get("pool.kubevirt.io/v1beta1", "VirtualMachinePool", "devbox", "team-vm")
    assert pool["spec"]["replicas"] == 1
    # The secrets reached the cluster, through the VM's Secrets only...
    data = {k: base64.b64decode(v).decode() for name in ("devbox-cloud-init", "devbox-ssh-keys")
            for k, v in kube.get("v1", "Secret", name, "team-vm")["data"].items()}
    assert sorted(data.values()) == sorted([CLOUD_INIT, SSH_KEYS])
    assert CLOUD_INIT.split("\n")[1] not in json.dumps(pool)
    # ... and the state holds them only encrypted.
    export = project.pulumi("stack", "export").stdout
    for text in ("e2e-not-a-real-password", "AAAAC3NzaC1lZDI1NTE5AAAAIE2e"):
        assert text not in export, f"{text!r} in plain text in the state"
    # A program that changes nothing plans nothing (the secrets are compared, not re-sent).
    project.pulumi("preview", "--expect-no-changes")
