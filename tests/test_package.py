"""The component package (sandbox_infra/package.py, provider/): its schema is the one checked in,
it is inferred from the args classes (types, required fields, descriptions), and what crosses
the wire is turned back into what the args classes take. Offline: the schema is generated in
process, as `pulumi package get-schema provider` would print it (tests/e2e/test_yaml_example.py
checks that the CLI prints the same)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import typing
from collections.abc import Callable

import grpc
import pulumi
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import proto, rpc

from components import SandboxTemplate, SandboxTemplateArgs, TenantArgs, WarmPoolArgs, pool_readiness
from components.pool_readiness import PACKAGE_TYPE, WATCHED
from components.specs.template import TemplateSpec
from sandbox_infra.package import (
    COMPONENTS,
    PACKAGE,
    PYTHON_ONLY,
    SCHEMA_FILE,
    SandboxInfraProvider,
    _args_class,
    _component_classes,
    _Servicer,
    schema,
)

from .pulumi_harness import run_under_mocks


@pytest.fixture(scope="module")
def provider() -> SandboxInfraProvider:
    return SandboxInfraProvider()


@pytest.fixture(scope="module")
def generated() -> dict:
    return schema()


def token(name: str) -> str:
    return f"{PACKAGE}:index:{name}"


def test_the_checked_in_schema_is_the_one_the_code_serves(generated: dict) -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == generated, (
        "provider/schema.json differs from the schema the args classes give: run `make schema` and commit it")


def test_every_served_component_is_in_the_schema_with_its_args_fields(generated: dict) -> None:
    assert set(generated["resources"]) == {token(name) for name in COMPONENTS}
    for args_cls, name in ((TenantArgs, "Tenant"), (SandboxTemplateArgs, "SandboxTemplate"), (WarmPoolArgs, "WarmPool")):
        resource = generated["resources"][token(name)]
        fields = {f.name: f for f in dataclasses.fields(args_cls) if f.name not in PYTHON_ONLY}
        camel = {"".join(w.capitalize() if i else w for i, w in enumerate(n.split("_"))): f for n, f in fields.items()}
        assert set(resource["inputProperties"]) == set(camel)
        required = {n for n, f in camel.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        assert set(resource["requiredInputs"]) == required
        for prop in resource["inputProperties"].values():
            assert prop.get("description"), f"{name}: an input without a description (a docstring of {args_cls.__name__})"


def test_descriptions_come_from_the_docstrings(generated: dict) -> None:
    template = generated["resources"][token("SandboxTemplate")]
    assert template["description"] == " ".join(SandboxTemplate.__doc__.split())
    first_line = "The tenant whose namespace the template lives in"
    assert template["inputProperties"]["tenant"]["description"].startswith(first_line)
    port = generated["types"][token("TemplateSpec")]["properties"]["port"]
    assert port["type"] == "integer"
    assert port["description"].startswith("The agent's port (AG-UI / agent API)")
    assert port["description"].endswith("Default: `8888`.")


def test_components_passed_to_components_are_resource_references(generated: dict) -> None:
    template = generated["resources"][token("SandboxTemplate")]["inputProperties"]
    assert template["install"]["$ref"] == f"#/resources/{token('AgentSandbox')}"
    assert template["tenant"]["$ref"] == f"#/resources/{token('Tenant')}"
    pool = generated["resources"][token("WarmPool")]["inputProperties"]
    assert pool["template"]["$ref"] == f"#/resources/{token('SandboxTemplate')}"


def test_pydantic_types_become_schema_types(generated: dict) -> None:
    spec = generated["types"][token("TemplateSpec")]
    fields = TemplateSpec.model_fields
    # required = no default; `tenant` too may be left out: it is the tenant passed alongside, and
    # `image`: the component's `image` input overrides it.
    assert set(spec["required"]) == {f.alias or n for n, f in fields.items() if f.is_required()} - {"tenant", "image"}
    assert set(spec["properties"]) == {f.alias or n for n, f in fields.items()}
    props = spec["properties"]
    assert props["trust"]["type"] == "string" and "One of: `untrusted`, `trusted`." in props["trust"]["description"]
    assert props["env"] == {"type": "array", "items": {"$ref": f"#/types/{token('EnvVar')}", "plain": True}, "plain": True}
    assert props["labels"]["additionalProperties"] == {"type": "string", "plain": True}
    assert props["scratchSize"]["$ref"] == "pulumi.json#/Any"  # a quantity: "1Gi", 1 or 0.5
    pool = generated["types"][token("WarmPoolSpec")]["properties"]
    assert "replicas" in pool and "fixedReplicas" not in pool  # the key users write (the field's alias)
    assert pool["replicas"]["type"] == "integer"


def construct_inputs(provider: SandboxInfraProvider, component: str, inputs: dict) -> tuple[dict, list[dict]]:
    definition = provider._component_defs[component]
    problems: list[dict[str, str]] = []
    converted = {key: provider._value(value, definition.inputs[key], key, problems) for key, value in inputs.items()}
    return converted, problems


def test_numbers_from_the_wire_are_integers_again_where_the_schema_says_integer(provider: SandboxInfraProvider) -> None:
    converted, problems = construct_inputs(provider, "WarmPool", {"spec": {"name": "python", "replicas": 3.0,
                                                                          "slo": {"readyTime": 2.0, "hitRatio": 0.99}}})
    assert problems == []
    assert converted["spec"]["replicas"] == 3 and type(converted["spec"]["replicas"]) is int
    assert type(converted["spec"]["slo"]["hitRatio"]) is float  # a `number` stays one


def test_unknown_keys_are_errors_not_silently_dropped(provider: SandboxInfraProvider) -> None:
    _, problems = construct_inputs(provider, "Tenant", {"spec": {"name": "team-a", "quota": {"podz": 3.0}}})
    assert problems == [{"property_path": "spec.quota.podz",
                         "reason": "unknown key; allowed keys here: requestsCpu, requestsMemory, limitsCpu, "
                                   "limitsMemory, pods"}]


def test_a_spec_must_be_known_at_preview(provider: SandboxInfraProvider) -> None:
    _, problems = construct_inputs(provider, "Tenant", {"spec": {"name": pulumi.Output.from_input("team-a")}})
    assert [p["property_path"] for p in problems] == ["spec.name"]
    assert "known at preview" in problems[0]["reason"]


def test_an_input_field_takes_another_resources_output(generated: dict, provider: SandboxInfraProvider) -> None:
    """A field typed `str | pulumi.Output[str]` is a (non-plain) string input: an Output passes
    through to the component, which checks it once it resolves; a spec must still be known."""
    image = generated["resources"][token("SandboxTemplate")]["inputProperties"]["image"]
    assert image["type"] == "string" and "plain" not in image
    built = pulumi.Output.from_input("registry.example.com/team/python:1.2.3")
    converted, problems = construct_inputs(provider, "SandboxTemplate", {"image": built})
    assert problems == [] and converted["image"] is built


def test_a_component_reference_must_resolve_to_a_component_of_the_program(provider: SandboxInfraProvider) -> None:
    _, problems = construct_inputs(provider, "WarmPool", {"template": "urn:pulumi:e2e::p::sandbox-infra:index:SandboxTemplate::x"})
    # In the message, not as a property error: the CLI cannot print a resource reference's value there.
    assert problems == [{"property_path": "", "reason": "template must be a sandbox-infra:index:SandboxTemplate declared "
                         "in the same program (`template: ${name}`), got urn:pulumi:e2e::p::sandbox-infra:index:SandboxTemplate::x"}]


def test_no_field_of_the_args_classes_is_left_out_unnoticed(generated: dict) -> None:
    """Every args field is either in the schema or named Python-only: a new field cannot be
    forgotten by the package (test_the_checked_in_schema... then fails until `make schema`)."""
    for name, component in _component_classes().items():
        hints = typing.get_type_hints(_args_class(component))
        served = set(generated["resources"][token(name)]["inputProperties"])
        for field in hints:
            camel = "".join(w.capitalize() if i else w for i, w in enumerate(field.split("_")))
            assert (camel in served) != (field in PYTHON_ONLY), f"{name}: {field}"


# --- the warm pool's wait, when the package builds the pool --------------------------------

API_VERSION = "v1beta1"  # the agent-sandbox API version the pinned install serves


def _pool_through_the_package(options: Callable[[], pulumi.ResourceOptions | None] = lambda: None,
                              config: dict[str, str] | None = None) -> list:
    """Install, tenant, template and a waiting pool, each built as the package's provider builds it
    for a YAML program (construct); returns the registrations of the pool's wait."""
    def program() -> None:
        for key, value in (config or {}).items():
            pulumi.runtime.set_config(key, value)
        provider = SandboxInfraProvider()

        def construct(name: str, component: str, inputs: dict, opts: pulumi.ResourceOptions | None = None) -> object:
            provider.construct(name, token(component), inputs, opts)
            return provider.constructed[(token(component), name)]

        install = construct("install", "AgentSandbox", {"waitForWorkloads": False})
        team = construct("team", "Tenant", {"spec": {"name": "team-a"}})
        template = construct("python", "SandboxTemplate", {"install": install, "tenant": team,
                                                           "spec": {"name": "python", "image": "registry.example.com/p:1",
                                                                    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                                                                  "limits": {"cpu": "1", "memory": "1Gi"}}}})
        construct("pool", "WarmPool", {"template": template, "spec": {"name": "python", "replicas": 2.0,
                                                                     "waitForReady": True, "readyTimeout": "90s"}},
                  options())

    try:
        registrations = run_under_mocks(program)
    finally:
        for key in config or {}:
            pulumi.runtime.config.CONFIG.get().pop(key, None)  # set_config fills a shared default
    return [r for r in registrations if "PoolReadiness" in r.type]


def test_a_pool_built_by_the_package_waits_through_the_packages_own_resource() -> None:
    """Not the Python dynamic resource, which the engine cannot run for a program in another language."""
    (wait,) = _pool_through_the_package()
    assert wait.type == PACKAGE_TYPE == token("PoolReadiness") and wait.custom
    assert wait.name == "team-a/python" and wait.parent.endswith(f"{token('WarmPool')}::pool")
    assert any(d.endswith("SandboxWarmPool::team-a/python") for d in wait.dependencies)
    assert {k: wait.inputs[k] for k in WATCHED} == {"namespace": "team-a", "pool": "python", "template": "python",
                                                    "replicas": 2, "apiVersion": API_VERSION, "timeoutSeconds": 90}
    # No stack config for the Kubernetes provider: the ambient kubeconfig, as its default provider.
    assert wait.inputs.get("kubeconfig") is None and wait.inputs.get("context") is None


def test_the_wait_reads_the_cluster_of_the_stacks_kubernetes_config_as_a_secret() -> None:
    (wait,) = _pool_through_the_package(config={"kubernetes:kubeconfig": "apiVersion: v1\nkind: Config\n",
                                                "kubernetes:context": "prod"})
    assert rpc.is_rpc_secret(wait.inputs["kubeconfig"])
    assert rpc.unwrap_rpc_secret(wait.inputs["kubeconfig"]) == "apiVersion: v1\nkind: Config\n"
    assert wait.inputs["context"] == "prod"


def test_the_wait_reads_the_cluster_of_an_explicit_kubernetes_provider() -> None:
    """The pool's objects go through the provider passed (YAML: `options: {providers: [...]}`); the wait too."""
    import pulumi_kubernetes as k8s

    def options() -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers={"kubernetes": k8s.Provider("k8s", kubeconfig="KUBECONFIG", context="c1")})

    (wait,) = _pool_through_the_package(options, config={"kubernetes:context": "not-this-one"})
    assert rpc.is_rpc_secret(wait.inputs["kubeconfig"])
    assert rpc.unwrap_rpc_secret(wait.inputs["kubeconfig"]) == "KUBECONFIG"
    assert rpc.unwrap_rpc_secret(wait.inputs["context"]) == "c1"


class _Aborted(Exception):
    pass


class _Context:
    """A gRPC servicer context that records how a call ended."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


def _struct(props: dict) -> struct_pb2.Struct:
    return asyncio.run(rpc.serialize_properties(props, {}))


PROPS = {"namespace": "team-a", "pool": "python", "template": "python", "replicas": 2, "apiVersion": API_VERSION,
         "timeoutSeconds": 90, "kubeconfig": pulumi.Output.secret("apiVersion: v1\nkind: Config\n"), "context": None}
URN = f"urn:pulumi:e2e::yaml-warm-pool::{token('WarmPool')}${PACKAGE_TYPE}::team-a/python"


@pytest.fixture
def servicer(provider: SandboxInfraProvider) -> _Servicer:
    return _Servicer(provider, [], "127.0.0.1:0")


def test_the_provider_waits_and_returns_what_it_waited_for_never_the_credentials(
        servicer: _Servicer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(pool_readiness, "wait_for_pool", lambda props, read: seen.append(props) or
                        pool_readiness.Verdict("ready", ""))
    monkeypatch.setattr(pool_readiness, "Cluster", lambda kubeconfig, context: seen.append({"kubeconfig": kubeconfig}))
    request = proto.CreateRequest(urn=URN, properties=_struct(PROPS))
    response = asyncio.run(servicer.Create(request, _Context()))
    assert response.id == "team-a/python"
    outs = rpc.deserialize_properties(response.properties)
    assert set(outs) == set(WATCHED) and outs["replicas"] == 2
    assert seen[0] == {"kubeconfig": "apiVersion: v1\nkind: Config\n"}  # the secret, unwrapped for the client only


def test_the_provider_fails_with_the_one_message_the_dynamic_provider_gives(
        servicer: _Servicer, monkeypatch: pytest.MonkeyPatch) -> None:
    message = "warm pool team-a/python (template python) cannot become ready: pod p-1: CreateContainerConfigError"
    monkeypatch.setattr(pool_readiness, "Cluster", lambda kubeconfig, context: None)
    monkeypatch.setattr(pool_readiness, "wait_for_pool", lambda props, read: pool_readiness.Verdict("failed", message))
    with pytest.raises(_Aborted) as aborted:
        asyncio.run(servicer.Create(proto.CreateRequest(urn=URN, properties=_struct(PROPS)), _Context()))
    assert aborted.value.args == (grpc.StatusCode.UNKNOWN, f"PoolNotReady: {message}")


def test_the_provider_keeps_secrets_and_waits_again_only_when_the_pool_changes(servicer: _Servicer) -> None:
    news = _struct(PROPS)
    checked = asyncio.run(servicer.Check(proto.CheckRequest(urn=URN, olds=_struct({}), news=news), _Context()))
    assert checked.inputs == news and rpc.is_rpc_secret(rpc.deserialize_properties(checked.inputs)["kubeconfig"])

    def diff(**change: object) -> int:
        request = proto.DiffRequest(urn=URN, olds=_struct(PROPS), news=_struct({**PROPS, **change}))
        return asyncio.run(servicer.Diff(request, _Context())).changes

    assert diff(kubeconfig="other", context="other") == proto.DiffResponse.DIFF_NONE
    assert diff(replicas=3) == diff(timeoutSeconds=600) == proto.DiffResponse.DIFF_SOME


def test_the_provider_serves_no_other_custom_resource(servicer: _Servicer) -> None:
    with pytest.raises(_Aborted, match="serves no custom resource"):
        asyncio.run(servicer.Create(proto.CreateRequest(urn=URN.replace("PoolReadiness", "Other")), _Context()))


# --- VmEnvironment: a spec with secrets --------------------------------------------------

CLOUD_INIT = "#cloud-config\npassword: hunter2\n"
SSH_KEYS = "ssh-ed25519 AAAAC3Nza... dev@example.com"


def _unknown() -> pulumi.Output:
    """What another resource's output is at preview."""
    def future(value: object) -> asyncio.Future:
        done = asyncio.get_event_loop().create_future()
        done.set_result(value)
        return done
    return pulumi.Output(set(), future(None), future(False), future(True))


def _vm_through_the_package(cloud_init: Callable[[], object], ssh_keys: Callable[[], object]) -> list:
    """A tenant and a VmEnvironment, built as the package builds them; returns the Secrets registered."""
    def program() -> None:
        provider = SandboxInfraProvider()
        provider.construct("team", token("Tenant"), {"spec": {"name": "team-a"}})
        team = provider.constructed[(token("Tenant"), "team")]
        spec = {"id": "devbox", "executionKind": "kubevirt-vm",
                "vmConfig": {"containerDiskImage": "quay.io/containerdisks/fedora:40", "cpu": 2.0, "memory": "2Gi",
                             "cloudInitTemplate": cloud_init(), "sshAuthorizedKeys": ssh_keys()}}
        provider.construct("devbox", token("VmEnvironment"), {"tenant": team, "spec": spec})

    return [r for r in run_under_mocks(program) if r.type == "kubernetes:core/v1:Secret"]


def _secret_texts(secret: object) -> list[str]:
    """The values of a Secret's stringData, each of which must reach the engine as a secret."""
    data = secret.inputs["stringData"]
    if rpc.is_rpc_secret(data):  # the SDK marks the whole map secret when a value in it is
        return list(rpc.unwrap_rpc_secret(data).values())
    assert all(rpc.is_rpc_secret(v) for v in data.values()), f"{secret.name}: a value not sent as a secret"
    return [rpc.unwrap_rpc_secret(v) for v in data.values()]


def test_a_vm_spec_takes_its_secrets_as_secret_outputs_and_keeps_them_secret() -> None:
    secrets = _vm_through_the_package(lambda: pulumi.Output.secret(CLOUD_INIT),
                                      lambda: rpc.wrap_rpc_secret(SSH_KEYS))  # both ways a secret crosses the wire
    assert sorted(r.name for r in secrets) == ["team-a/devbox-cloud-init", "team-a/devbox-ssh-keys"]
    assert sorted(text for r in secrets for text in _secret_texts(r)) == sorted([CLOUD_INIT, SSH_KEYS])


def test_a_vm_secret_given_in_plain_text_is_stored_as_a_secret_all_the_same() -> None:
    secrets = _vm_through_the_package(lambda: CLOUD_INIT, lambda: SSH_KEYS)
    assert sorted(text for r in secrets for text in _secret_texts(r)) == sorted([CLOUD_INIT, SSH_KEYS])


def test_a_vm_secret_unknown_at_preview_does_not_fail_the_preview() -> None:
    secrets = _vm_through_the_package(_unknown, _unknown)
    assert sorted(r.name for r in secrets) == ["team-a/devbox-cloud-init", "team-a/devbox-ssh-keys"]


def test_only_the_secret_fields_take_secrets(provider: SandboxInfraProvider) -> None:
    spec = {"id": rpc.wrap_rpc_secret("devbox"), "executionKind": "kubevirt-vm",
            "vmConfig": {"containerDiskImage": "quay.io/containerdisks/fedora:40", "cpu": 2.0, "memory": "2Gi",
                         "cloudInitTemplate": ""}}
    _, problems = construct_inputs(provider, "VmEnvironment", {"spec": spec})
    assert [p["property_path"] for p in problems] == ["spec.id", "spec.vmConfig.cloudInitTemplate"]
    assert "must not be a secret" in problems[0]["reason"] and "non-empty string" in problems[1]["reason"]


def test_the_schema_marks_the_secret_fields(generated: dict) -> None:
    vm = generated["types"][token("VmConfig")]["properties"]
    assert vm["cloudInitTemplate"]["secret"] and vm["sshAuthorizedKeys"]["secret"]
    assert "plain" not in vm["cloudInitTemplate"] and vm["cpu"]["plain"]  # a secret may be another resource's output
    assert generated["types"][token("RuntimeSpec")]["properties"]["vmConfig"]["$ref"] == f"#/types/{token('VmConfig')}"
