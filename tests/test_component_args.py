"""The components' args from a Python program, under `pulumi.runtime.set_mocks`:
RuntimeCatalogue and Monitoring built from the components they list (no StackSpec), and the
fields that take a `pulumi.Output` (a template's image; a VM's cloud-init and SSH keys, the
spec's secret keys): an Output reaches the object, a secret stays a secret, and a bad image,
known at once or only once resolved, fails with one message naming the field."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components import (
    AgentSandbox,
    AgentSandboxArgs,
    Monitoring,
    MonitoringArgs,
    RuntimeCatalogue,
    RuntimeCatalogueArgs,
    SandboxTemplate,
    SandboxTemplateArgs,
    Tenant,
    TenantArgs,
    VmEnvironment,
    VmEnvironmentArgs,
    WarmPool,
    WarmPoolArgs,
)
from components.errors import ConfigError
from components.k8s import ResolvedInputError
from components.manifests.catalogue import CATALOGUE_KEY
from components.manifests.graph import catalogue_spec, monitoring_scope
from components.manifests.monitoring import build_monitoring
from components.manifests.stack import render_stack
from components.specs import spec_from_config
from components.upstream import UpstreamLoader

from .kubevirt_support import CLOUD_INIT_SECRET, SSH_SECRET, sealed, vm_stack_config
from .pulumi_harness import Registration, run_under_mocks

RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
IMAGE = "registry.example.com/team/python:1.2.3"
VM = {"id": "devbox", "executionKind": "kubevirt-vm",
      "vmConfig": {"containerDiskImage": "quay.io/containerdisks/fedora:40", "cpu": 2, "memory": "2Gi"}}


def _vm(cloud_init: Any, **secrets: Any) -> dict[str, Any]:
    """VM with its secret keys given (as another resource's outputs, in these tests)."""
    return {**VM, "vmConfig": {**VM["vmConfig"], "cloudInitTemplate": cloud_init, **secrets}}


@pytest.fixture(autouse=True)
def _failed_outputs_retrieved() -> Any:
    """A value that fails its check fails every Output derived from it, and each such future
    nobody awaited has asyncio log "exception never retrieved" when it is finalized, at
    whatever moment the collector runs: inside CPython 3.11's ast.parse that breaks the parser
    (SystemError). Mark them retrieved (the language host silences those logs anyway)."""
    yield
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled():
            obj.exception()


def _install(loader: UpstreamLoader) -> AgentSandbox:
    return AgentSandbox("agent-sandbox", AgentSandboxArgs(wait_for_workloads=False, loader=loader))


def _team(name: str = "team-a", **spec: Any) -> Tenant:
    return Tenant(name, TenantArgs(spec={"name": name, **spec}))


def _template(install: AgentSandbox, tenant: Tenant, name: str = "python", **args: Any) -> SandboxTemplate:
    spec = {"name": name, "resources": RESOURCES, **({} if "image" in args else {"image": IMAGE})}
    return SandboxTemplate(name, SandboxTemplateArgs(spec={**spec, **args.pop("spec", {})}, install=install,
                                                     tenant=tenant, **args))


def _custom(registrations: list[Registration], kind: str) -> list[Registration]:
    return [r for r in registrations if r.custom and r.type.endswith(f":{kind}")]


def _image(registrations: list[Registration]) -> Any:
    (template,) = _custom(registrations, "SandboxTemplate")
    return template.inputs["spec"]["podTemplate"]["spec"]["containers"][0]["image"]


def _fails(program: Callable[[], Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        run_under_mocks(program)
    return str(caught.value)


def _unknown() -> pulumi.Output[Any]:
    """An Output whose value is not known (as in a preview, before the resource exists)."""
    loop = asyncio.get_event_loop()
    value, known = loop.create_future(), loop.create_future()
    value.set_result(None)
    known.set_result(False)
    return pulumi.Output(set(), value, known)


# --- RuntimeCatalogue and Monitoring from components ----------------------------------------

def _stack_parts(spec: Any, loader: UpstreamLoader) -> tuple[AgentSandbox, dict[str, Tenant], dict[str, SandboxTemplate],
                                                          list[WarmPool]]:
    """The install, tenants, templates and pools of `spec`, as components (inside a program)."""
    install = _install(loader)
    tenants = {t.name: Tenant(t.name, TenantArgs(spec=t)) for t in spec.tenants}
    templates = {t.name: SandboxTemplate(t.name, SandboxTemplateArgs(spec=t, install=install, tenant=tenants[t.tenant]))
                 for t in spec.all_templates()}
    pools = [WarmPool(p.name, WarmPoolArgs(spec=p, template=templates[p.template], wait_for_workloads=False))
             for p in spec.all_warm_pools()]
    return install, tenants, templates, pools


def test_catalogue_from_components_is_the_stacks_catalogue(loader: UpstreamLoader) -> None:
    """The components a stack passes give the ConfigMap the offline render of that stack has."""
    spec = spec_from_config(sealed(vm_stack_config()))
    rendered = next(m for m in render_stack(spec, loader) if m["kind"] == "ConfigMap"
                    and m["metadata"]["name"] == "runtime-catalogue")

    def program() -> None:
        _, tenants, templates, pools = _stack_parts(spec, loader)
        vms = [VmEnvironment(r.id, VmEnvironmentArgs(spec=r, tenant=tenants[r.tenant])) for r in spec.vm_runtimes()]
        RuntimeCatalogue("runtime-catalogue", RuntimeCatalogueArgs(
            spec=catalogue_spec(spec), templates=list(templates.values()), pools=pools, vm_environments=vms,
            tenants=list(tenants.values())))

    (config_map,) = [r for r in _custom(run_under_mocks(program), "ConfigMap") if r.name.endswith("runtime-catalogue")]
    assert json.loads(config_map.inputs["data"][CATALOGUE_KEY]) == json.loads(rendered["data"][CATALOGUE_KEY])


def test_catalogue_lists_each_template_passed_under_its_name_by_default(loader: UpstreamLoader) -> None:
    def program() -> None:
        install, team = _install(loader), _team(gatewayServiceAccounts=[{"name": "gateway"}])
        template = _template(install, team)
        pool = WarmPool("python", WarmPoolArgs(spec={"name": "python", "replicas": 2}, template=template, wait_for_workloads=False))
        RuntimeCatalogue("catalogue", RuntimeCatalogueArgs(spec={"namespace": "team-a"}, templates=[template],
                                                           pools=[pool], tenants=[team]))

    registrations = run_under_mocks(program)
    (config_map,) = [r for r in _custom(registrations, "ConfigMap") if "runtime-catalogue" in r.name]
    entries = json.loads(config_map.inputs["data"][CATALOGUE_KEY])["runtimes"]
    assert list(entries) == ["python"]
    assert entries["python"]["displayName"] == "python" and entries["python"]["namespace"] == "team-a"
    assert [p["name"] for p in entries["python"]["warmPools"]] == ["python"]
    # In a tenant's namespace: no namespace of its own, and it waits for that tenant's.
    assert not [r for r in _custom(registrations, "Namespace") if r.name != "team-a" and "catalogue" in r.urn]
    team_namespace = next(r for r in _custom(registrations, "Namespace") if r.name == "team-a")
    assert team_namespace.urn in config_map.dependencies


@pytest.mark.parametrize(("catalogue", "message"), [
    ({"spec": {"podRuntimes": [{"id": "py", "template": "ruby"}]}},
     "RuntimeCatalogue 'catalogue': spec.podRuntimes[0].template = 'ruby': names no template passed in templates; "
     "allowed: 'python'"),
    ({"spec": {"podRuntimes": [{"id": "ruby"}]}},
     "RuntimeCatalogue 'catalogue': spec.podRuntimes[0].id = 'ruby': names no template passed in templates; "
     "allowed: 'python'"),
    ({"spec": {"podRuntimes": [{"id": "py", "template": "python"}]}, "templates": "none"},
     "RuntimeCatalogue 'catalogue': spec.podRuntimes[0].template = 'python': names no template passed in templates; "
     "allowed: none passed"),
    ({"spec": {"podRuntimes": [{"id": "py", "template": "python"}]}, "pools": "other"},
     "RuntimeCatalogue 'catalogue': pools[0] ('node') keeps sandboxes of template 'node', which is not passed in "
     "templates"),
    ({"spec": {"podRuntimes": [{"id": "py", "template": "python"}]}, "templates": "both"},
     "RuntimeCatalogue 'catalogue': templates[1] ('node') is passed but no spec.podRuntimes entry lists it: add one, "
     "or do not pass it"),
    ({"spec": {"podRuntimes": [{"id": "devbox", "template": "python"}]}, "vm": True},
     "RuntimeCatalogue 'catalogue': runtime id(s) 'devbox' listed more than once"),
    ({"spec": {"nmae": "x"}}, "RuntimeCatalogue 'catalogue': invalid config (1 problem)\n  - spec.nmae: unknown key"),
])
def test_catalogue_refuses_what_it_cannot_list(loader: UpstreamLoader, catalogue: dict[str, Any], message: str) -> None:
    def program() -> None:
        install, team = _install(loader), _team()
        python, node = _template(install, team), _template(install, team, "node")
        other = WarmPool("node", WarmPoolArgs(spec={"name": "node", "replicas": 1}, template=node, wait_for_workloads=False))
        vms = ([VmEnvironment("devbox", VmEnvironmentArgs(spec=_vm(pulumi.Output.secret("#cloud-config")), tenant=team))]
               if catalogue.get("vm") else [])
        templates = {"both": [python, node], "none": []}.get(catalogue.get("templates", ""), [python])
        RuntimeCatalogue("catalogue", RuntimeCatalogueArgs(
            spec=catalogue["spec"], templates=templates, pools=[other] if catalogue.get("pools") else [],
            vm_environments=vms, tenants=[team]))

    assert _fails(program).startswith(message)


def test_monitoring_from_components_is_the_stacks_monitoring(loader: UpstreamLoader) -> None:
    config = sealed(vm_stack_config())
    config["monitoring"] = {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}
    config["warmPools"].append({"name": "slo", "template": "python",
                                "slo": {"claimRate": "2/s", "readyTime": "3s", "hitRatio": 0.99}})
    spec = spec_from_config(config)
    rendered = {m["kind"]: m for m in build_monitoring(monitoring_scope(spec))}

    def program() -> None:
        install, _, _, pools = _stack_parts(spec, loader)
        Monitoring("monitoring", MonitoringArgs(spec={"labels": {"release": "kube-prometheus-stack"}}, install=install,
                                                cluster="test", pools=pools))

    registrations = run_under_mocks(program)
    rule = next(r for r in _custom(registrations, "PrometheusRule"))
    assert rule.inputs["spec"] == rendered["PrometheusRule"]["spec"]
    dashboard = next(r for r in _custom(registrations, "ConfigMap") if "dashboard" in r.name)
    assert dashboard.inputs["data"] == rendered["ConfigMap"]["data"]
    # Monitoring is in place while the pools fill: its objects wait for the install, not for a pool.
    pools = {r.urn for r in _custom(registrations, "SandboxWarmPool")}
    assert pools and not pools & set(rule.dependencies)


def test_monitoring_refuses_to_be_created_disabled(loader: UpstreamLoader) -> None:
    def program() -> None:
        Monitoring("monitoring", MonitoringArgs(spec={"enabled": False}, install=_install(loader), cluster="test"))

    assert _fails(program) == ("Monitoring 'monitoring': spec.enabled = False: a Monitoring component always creates its "
                               "objects; leave spec.enabled out, or do not create the component")


# --- pulumi.Input fields: a template's image ----------------------------------------------

def test_an_output_image_reaches_the_sandbox_template(loader: UpstreamLoader) -> None:
    def program() -> None:
        install, team = _install(loader), _team()
        # What an image build would give: an Output of another resource (spec.image left out).
        build = pulumi.CustomResource("test:index:ImageBuild", "python-image", {"ref": IMAGE})
        _template(install, team, image=build.ref)  # type: ignore[attr-defined]

    registrations = run_under_mocks(program)
    assert _image(registrations) == IMAGE
    (template,) = _custom(registrations, "SandboxTemplate")
    build = next(r for r in registrations if r.type == "test:index:ImageBuild")
    assert build.urn in template.dependencies  # the template waits for what gives its image


def test_the_image_field_overrides_spec_image(loader: UpstreamLoader) -> None:
    def program() -> None:
        install, team = _install(loader), _team()
        _template(install, team, spec={"image": "registry.example.com/old:1.0"}, image=pulumi.Output.from_input(IMAGE))

    assert _image(run_under_mocks(program)) == IMAGE


def test_an_unknown_image_is_fine_in_a_preview(loader: UpstreamLoader) -> None:
    def program() -> None:
        _template(_install(loader), _team(), image=_unknown())

    assert isinstance(_image(run_under_mocks(program, preview=True)), Unknown)


@pytest.mark.parametrize("as_output", [False, True], ids=["plain", "output"])
@pytest.mark.parametrize(("image", "problem"), [
    ("python:latest", "image = 'python:latest': must not use the mutable ':latest' tag; pin a version tag or an "
                      "@sha256 digest"),
    ("python", "image = 'python': must be pinned: add a version tag or an @sha256 digest"),
    (3, "image = 3: input should be a valid string"),
])
def test_a_bad_image_fails_with_one_message_known_or_resolved(loader: UpstreamLoader, image: Any, problem: str,
                                                               as_output: bool) -> None:
    def program() -> None:
        _template(_install(loader), _team(), image=pulumi.Output.from_input(image) if as_output else image)

    with pytest.raises(ConfigError) as caught:
        run_under_mocks(program)
    assert str(caught.value) == f"SandboxTemplate 'python': invalid config (1 problem)\n  - {problem}"
    # Resolved in an apply, it is a RunError: the language host prints its message, no stack.
    assert isinstance(caught.value, pulumi.RunError) == as_output
    assert isinstance(caught.value, ResolvedInputError) == as_output


def test_a_plain_spec_image_keeps_todays_message(loader: UpstreamLoader) -> None:
    def program() -> None:
        _template(_install(loader), _team(), spec={"image": "python:latest"})

    assert _fails(program) == ("SandboxTemplate 'python': invalid config (1 problem)\n  - spec.image = 'python:latest': "
                               "must not use the mutable ':latest' tag; pin a version tag or an @sha256 digest")


# --- pulumi.Input fields: a VM's cloud-init and SSH keys ------------------------------------

def _clear(value: Any) -> Any:
    """The value with every Pulumi secret removed: what would be stored and shown in clear."""
    if rpc.is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _clear(v) for k, v in value.items()}
    return [_clear(v) for v in value] if isinstance(value, list) else value


def test_vm_secrets_from_outputs_stay_secrets(loader: UpstreamLoader) -> None:
    def program() -> None:
        team = _team("vm-agents")
        # A public key output is not secret itself (tls.PrivateKey.public_key_openssh); the
        # component stores it as one. cloud-init from `config.require_secret`: a secret Output.
        key = pulumi.CustomResource("test:index:PrivateKey", "devbox-key", {"publicKeyOpenssh": SSH_SECRET})
        VmEnvironment("devbox", VmEnvironmentArgs(spec=_vm(
            pulumi.Output.secret(CLOUD_INIT_SECRET), sshAuthorizedKeys=key.publicKeyOpenssh),  # type: ignore[attr-defined]
            tenant=team))

    registrations = run_under_mocks(program)
    secrets = {r.name: r for r in _custom(registrations, "Secret")}
    assert sorted(secrets) == ["vm-agents/devbox-cloud-init", "vm-agents/devbox-ssh-keys"]
    for secret, value in ((secrets["vm-agents/devbox-cloud-init"], CLOUD_INIT_SECRET),
                          (secrets["vm-agents/devbox-ssh-keys"], SSH_SECRET)):
        (key,) = rpc.unwrap_rpc_secret(secret.inputs["stringData"])
        assert rpc.unwrap_rpc_secret(rpc.unwrap_rpc_secret(secret.inputs["stringData"])[key]) == value
    clear = json.dumps([_clear(r.inputs) for r in registrations if r.type != "test:index:PrivateKey"], default=str)
    assert "Tr0ub4dor-CLOUDINIT-7f3a" not in clear and "AAAAC3NzaC1lZDI1NTE5AAAAIOnlySSHKEY9b2e" not in clear
    # The keys add the VM's access credentials, as from stack config.
    (pool,) = _custom(registrations, "VirtualMachinePool")
    vm_spec = pool.inputs["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]
    assert vm_spec["accessCredentials"][0]["sshPublicKey"]["source"]["secret"]["secretName"] == "devbox-ssh-keys"


def test_a_vm_secret_in_plain_text_is_refused_without_quoting_it(loader: UpstreamLoader) -> None:
    def program() -> None:
        VmEnvironment("devbox", VmEnvironmentArgs(spec=_vm(CLOUD_INIT_SECRET), tenant=_team("vm-agents")))

    message = _fails(program)
    assert message == ("VmEnvironment 'devbox': invalid config (1 problem)\n  - spec.vmConfig.cloudInitTemplate: "
                       "must be a Pulumi secret, never plain text: pass a `SecretValue` from stack config or a "
                       "`pulumi.Output` (`config.require_secret(...)`, another resource's output)")
    assert CLOUD_INIT_SECRET not in message


def test_a_vm_without_cloud_init_still_says_which_key_is_missing(loader: UpstreamLoader) -> None:
    def program() -> None:
        VmEnvironment("devbox", VmEnvironmentArgs(spec=VM, tenant=_team("vm-agents")))

    assert _fails(program) == ("VmEnvironment 'devbox': invalid config (1 problem)\n"
                               "  - spec.vmConfig.cloudInitTemplate: required key is missing")
