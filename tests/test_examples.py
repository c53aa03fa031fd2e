"""The example programs in examples/ use the components directly, without this project's
stack config. Here they run under Pulumi mocks; tests/e2e/test_examples.py puts them up
through the real engine."""

from __future__ import annotations

import dataclasses
import inspect
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

import components
from components import reference
from components.specs.agent_sandbox import DEFAULT_AGENT_SANDBOX_VERSION
from components.upstream import UpstreamLoader
from components.validation import SchemaValidator

from .pulumi_harness import Registration, run_under_mocks

EXAMPLES = Path(__file__).parents[1] / "examples"
CLOUD_INIT = "#cloud-config\nusers: [{name: agent}]\n"


def run_example(name: str, monkeypatch: pytest.MonkeyPatch, config: dict[str, str] | None = None,
                ) -> tuple[list[Registration], dict[str, Any]]:
    """Run examples/<name>/__main__.py as its own Pulumi project; return the registrations
    and the resolved stack outputs."""
    project = yaml.safe_load((EXAMPLES / name / "Pulumi.yaml").read_text())["name"]
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda key, value: exported.__setitem__(key, value))
    resolved: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        for key, value in (config or {}).items():
            pulumi.runtime.set_config(f"{project}:{key}", value)
        runpy.run_path(str(EXAMPLES / name / "__main__.py"), run_name="__main__")
        return exported

    registrations = run_under_mocks(program, stack="example", project=project, resolved=resolved)
    return registrations, resolved


@pytest.fixture(autouse=True)
def _pinned_mirror(monkeypatch: pytest.MonkeyPatch, upstream: Path) -> None:
    # The examples use the default UpstreamLoader, which reads the mirror first: every file
    # they need is there, so nothing is downloaded.
    monkeypatch.setenv("UPSTREAM_DIR", str(upstream))


def test_warm_pool_for_one_team(monkeypatch: pytest.MonkeyPatch) -> None:
    registrations, outputs = run_example("warm-pool-team", monkeypatch)
    assert outputs == {"namespace": "team-a", "claimerRole": "sandbox-claimer", "template": "python",
                       "warmPool": "python", "apiVersion": "extensions.agents.x-k8s.io/v1beta1"}
    assert {"sandbox-infra:index:AgentSandbox", "sandbox-infra:index:Tenant", "sandbox-infra:index:SandboxTemplate",
            "sandbox-infra:index:WarmPool"} <= {r.type for r in registrations}
    # `depends_on=[install, tenant]` on a component reaches its children: the template object
    # waits for the CRDs, the controller and the namespace.
    template_object = next(r for r in registrations if r.type.endswith(":SandboxTemplate") and r.custom)
    waits_for = {r.name for r in registrations if r.urn in template_object.dependencies}
    assert {"sandboxtemplates.extensions.agents.x-k8s.io", "agent-sandbox-system/agent-sandbox-controller",
            "team-a"} <= waits_for
    pool_object = next(r for r in registrations if r.type.endswith(":SandboxWarmPool"))
    assert template_object.urn in pool_object.dependencies
    assert pool_object.inputs["spec"]["replicas"] == 3


def test_vm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    registrations, outputs = run_example("vm-environment", monkeypatch, {"cloudInit": CLOUD_INIT})
    assert outputs == {"namespace": "vm-agents", "service": "devbox", "kind": "VirtualMachinePool",
                       "kubevirtVersion": "v1.9.0"}
    secret = next(r for r in registrations if r.type == "kubernetes:core/v1:Secret")
    assert "stringData" in secret.additional_secret_outputs or "data" in secret.additional_secret_outputs
    workload = next(r for r in registrations if r.type.endswith(":VirtualMachinePool"))
    kubevirt_cr = next(r for r in registrations if r.type.endswith(":KubeVirt") and r.custom)
    assert kubevirt_cr.urn in workload.dependencies
    assert kubevirt_cr.inputs["spec"]["configuration"]["developerConfiguration"].get("useEmulation") in (None, False)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in resource inputs


def _unwrap(value: Any) -> Any:
    """Inputs with Pulumi secrets replaced by the values they wrap."""
    if isinstance(value, dict):
        return _unwrap(value["value"]) if SECRET_SIG in value else {k: _unwrap(v) for k, v in value.items()}
    return [_unwrap(v) for v in value] if isinstance(value, list) else value


@pytest.mark.parametrize("name", ["warm-pool-team", "vm-environment"])
def test_every_object_of_an_example_meets_its_schema(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation `check` runs (components/validation.py), on what each example registers:
    built-in kinds against Kubernetes' OpenAPI, KubeVirt and agent-sandbox objects against
    their pinned CRDs."""
    registrations, _ = run_example(name, monkeypatch, {"cloudInit": CLOUD_INIT} if name == "vm-environment" else None)
    objects = [_unwrap(r.inputs) for r in registrations if r.custom and isinstance(r.inputs.get("kind"), str)]
    validator = SchemaValidator(UpstreamLoader(), DEFAULT_AGENT_SANDBOX_VERSION)
    problems = {f"{m['kind']} {m['metadata'].get('name')}": [str(p) for p in validator.problems(m)] for m in objects}
    assert {k: v for k, v in problems.items() if v} == {}
    kinds = {m["kind"] for m in objects}
    assert {"VirtualMachinePool", "KubeVirt"} <= kinds if name == "vm-environment" else {"SandboxWarmPool"} <= kinds


@pytest.mark.parametrize("name", ["warm-pool-team", "vm-environment"])
def test_each_example_is_a_pulumi_project(name: str) -> None:
    project = yaml.safe_load((EXAMPLES / name / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (EXAMPLES / name / project["runtime"]["options"]["virtualenv"]).resolve() == (EXAMPLES.parent / ".venv").resolve()


def test_the_components_reference_is_generated_from_the_docstrings() -> None:
    assert (EXAMPLES.parent / "docs" / "components.md").read_text() == reference.render(), \
        "docs/components.md is stale: python -m components.reference > docs/components.md"


@pytest.mark.parametrize("name", reference.COMPONENTS)
def test_each_component_takes_name_args_opts_and_documents_every_arg(name: str) -> None:
    component, args = getattr(components, name), getattr(components, f"{name}Args")
    assert issubclass(component, pulumi.ComponentResource)
    assert list(inspect.signature(component.__init__).parameters) == ["self", "name", "args", "opts"]
    docs = reference.attribute_docs(args)
    assert [f.name for f in dataclasses.fields(args)] == list(docs)
    undocumented = [field for field, (_, doc) in docs.items() if not doc]
    assert not undocumented, f"{name}Args: document {undocumented}"


def test_the_public_module_exports_what_it_lists() -> None:
    assert sorted(components.__all__) == sorted(components._EXPORTS)
    for name in components.__all__:
        assert getattr(components, name) is not None


@pytest.mark.parametrize("name", [n for n in reference.COMPONENTS if n != "RequiredCrds"])
def test_args_annotations_are_types_the_component_provider_can_read(name: str) -> None:
    # Pulumi's component provider reads the annotations as objects: `from __future__ import
    # annotations` would leave strings (issue 21).
    for annotation in inspect.get_annotations(getattr(components, f"{name}Args")).values():
        assert not isinstance(annotation, str), (name, annotation)
    for attribute, annotation in inspect.get_annotations(getattr(components, name)).items():
        assert getattr(annotation, "__origin__", None) is pulumi.Output, (name, attribute, annotation)


def test_a_spec_given_as_a_mapping_is_validated_with_key_path_and_value() -> None:
    from components import SandboxTemplate, SandboxTemplateArgs
    from components.errors import ConfigError

    class Stub:
        _spec = type("S", (), {"name": "team-a", "api_version": "v1beta1"})()

    with pytest.raises(ConfigError) as caught:
        run_under_mocks(lambda: SandboxTemplate("python", SandboxTemplateArgs(
            spec={"name": "python", "image": "python:latest"}, install=Stub(), tenant=Stub())))  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("SandboxTemplate 'python': invalid config")
    assert "spec.image = 'python:latest'" in message and "spec.resources: required key is missing" in message
    with pytest.raises(ConfigError, match=r"spec.tenant = 'other' does not match the tenant passed \('team-a'\)"):
        run_under_mocks(lambda: SandboxTemplate("python", SandboxTemplateArgs(
            spec={"name": "python", "tenant": "other", "image": "python:3.12",
                  "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
            install=Stub(), tenant=Stub())))  # type: ignore[arg-type]
