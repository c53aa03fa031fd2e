"""The component package (sandbox_infra/package.py, provider/): its schema is the one checked in,
it is inferred from the args classes (types, required fields, descriptions), and what crosses
the wire is turned back into what the args classes take. Offline: the schema is generated in
process, as `pulumi package get-schema provider` would print it (tests/e2e/test_yaml_example.py
checks that the CLI prints the same)."""

from __future__ import annotations

import dataclasses
import json
import typing

import pulumi
import pytest

from components import SandboxTemplate, SandboxTemplateArgs, TenantArgs, WarmPoolArgs
from components.specs.template import TemplateSpec
from sandbox_infra.package import (
    COMPONENTS,
    PACKAGE,
    PYTHON_ONLY,
    SCHEMA_FILE,
    SandboxInfraProvider,
    _args_class,
    _component_classes,
    schema,
)


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
