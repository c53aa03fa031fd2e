"""The Pulumi components under `pulumi.runtime.set_mocks`: what the engine would receive."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.manifests.stack import render_stack
from components.sizing.model import erlang_b
from components.specs import spec_from_config
from components.specs.loader import load_stack, project_config
from components.stack import deploy
from components.upstream import UpstreamLoader

from .conftest import stack_config
from .pulumi_harness import Registration, run_under_mocks

ROOT = Path(__file__).resolve().parents[1]
CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def _deploy(config: dict[str, Any], loader: UpstreamLoader) -> dict[str, Registration]:
    spec = spec_from_config(config)
    registrations = run_under_mocks(lambda: deploy(spec, loader))
    by_urn = {r.urn: r for r in registrations}
    assert len(by_urn) == len(registrations), "two resources share a URN"
    return by_urn


def _of_type(registrations: dict[str, Registration], suffix: str) -> list[Registration]:
    return [r for r in registrations.values() if r.type.startswith("kubernetes:") and r.type.endswith(suffix)]


def _one(registrations: dict[str, Registration], suffix: str) -> Registration:
    found = _of_type(registrations, suffix)
    assert len(found) == 1, f"expected one {suffix}, found {[r.urn for r in found]}"
    return found[0]


def _named(registrations: dict[str, Registration], suffix: str, name: str) -> Registration:
    (found,) = [r for r in _of_type(registrations, suffix) if r.name == name]
    return found


CONTROLLER = "agent-sandbox-system/agent-sandbox-controller"


@pytest.fixture(scope="module")
def dev(loader: UpstreamLoader) -> dict[str, Registration]:
    """The dev stack under mocks, once for the module: the tests only read it."""
    return _deploy(stack_config("dev"), loader)


def test_components_and_their_children(dev: dict[str, Registration]) -> None:
    components = sorted((r.type, r.name) for r in dev.values() if not r.custom)
    assert components == [
        ("sandbox-infra:index:AdmissionPolicies", "admission"),
        ("sandbox-infra:index:AgentSandbox", "agent-sandbox"),
        ("sandbox-infra:index:KubeVirt", "kubevirt"),
        ("sandbox-infra:index:RuntimeCatalogue", "runtime-catalogue"),
        ("sandbox-infra:index:SandboxTemplate", "python"),
        ("sandbox-infra:index:Tenant", "agents-dev"),
        ("sandbox-infra:index:VmEnvironment", "devbox"),
        ("sandbox-infra:index:WarmPool", "python"),
    ]
    parents = {r.urn: r.type for r in dev.values()}
    for registration in dev.values():
        if registration.type.startswith("kubernetes:"):
            parent_type = parents[registration.parent]
            assert parent_type.startswith("sandbox-infra:index:"), registration.urn
    assert parents[_one(dev, ":SandboxTemplate").parent] == "sandbox-infra:index:SandboxTemplate"
    assert parents[_one(dev, ":SandboxWarmPool").parent] == "sandbox-infra:index:WarmPool"
    assert parents[_named(dev, ":Deployment", CONTROLLER).parent] == "sandbox-infra:index:AgentSandbox"
    assert parents[_named(dev, ":Deployment", "kubevirt/virt-operator").parent] == "sandbox-infra:index:KubeVirt"
    assert parents[_one(dev, ":VirtualMachinePool").parent] == "sandbox-infra:index:VmEnvironment"
    assert parents[_one(dev, "core/v1:ResourceQuota").parent] == "sandbox-infra:index:Tenant"


def test_admission_policies_are_deployed_as_rendered_each_binding_after_its_policy(
        dev: dict[str, Registration], loader: UpstreamLoader) -> None:
    policies = {r.name: r for r in _of_type(dev, ":ValidatingAdmissionPolicy")}
    bindings = _of_type(dev, ":ValidatingAdmissionPolicyBinding")
    rendered = render_stack(load_stack("dev"), loader)
    assert sorted(policies) == sorted(m["metadata"]["name"] for m in rendered if m["kind"] == "ValidatingAdmissionPolicy")
    assert len(bindings) == sum(m["kind"] == "ValidatingAdmissionPolicyBinding" for m in rendered)
    for binding in bindings:
        assert binding.inputs["spec"]["validationActions"] == ["Audit", "Warn"]  # dev audits
        assert policies[binding.inputs["spec"]["policyName"]].urn in binding.dependencies, binding.urn
    kubevirt = [b for b in bindings if b.name.endswith("-kubevirt")]
    assert kubevirt and all(b.inputs["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"]
                            == ["kubevirt"] for b in kubevirt)


def test_every_kubernetes_resource_uses_the_stack_provider(dev: dict[str, Registration]) -> None:
    provider = next(r for r in dev.values() if r.type == "pulumi:providers:kubernetes")
    assert provider.name == "dev"
    for registration in _of_type(dev, ""):
        assert registration.provider.startswith(provider.urn + "::"), registration.urn


def test_render_only_provider_needs_no_cluster_credentials(loader: UpstreamLoader,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The provider refuses any kubeconfig next to renderYamlToDirectory, also the ambient one.
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")
    config = stack_config("staging")
    config["cluster"]["provider"] = {"context": "staging-eu-west", "kubeconfig": "/etc/kube/staging.yaml",
                                     "renderYamlToDirectory": "out/staging"}
    config["cluster"]["waitForWorkloads"] = False
    provider = next(r for r in _deploy(config, loader).values() if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs.get("renderYamlToDirectory") == "out/staging"
    assert "context" not in provider.inputs and not provider.inputs.get("kubeconfig")

    del config["cluster"]["provider"]["renderYamlToDirectory"]
    config["cluster"]["waitForWorkloads"] = True
    provider = next(r for r in _deploy(config, loader).values() if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "staging-eu-west"
    assert provider.inputs["kubeconfig"] == "/etc/kube/staging.yaml"
    assert "renderYamlToDirectory" not in provider.inputs


def test_configmaps_and_secrets_are_updated_in_place(dev: dict[str, Registration]) -> None:
    # A fixed-name ConfigMap or Secret replaced on a data change is deleted, then created:
    # the catalogue would vanish for a moment on every upgrade (tests/e2e/test_pulumi_upgrade.py).
    provider = next(r for r in dev.values() if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["enableConfigMapMutable"] == "true"  # provider config travels as strings
    assert provider.inputs["enableSecretMutable"] == "true"
    assert provider.inputs["enableServerSideApply"] == "true"


def test_only_crds_are_retained_on_delete(dev: dict[str, Registration]) -> None:
    retained = sorted(r.name for r in dev.values() if r.retain_on_delete)
    assert retained == sorted(r.name for r in _of_type(dev, ":CustomResourceDefinition"))
    assert len(retained) == 5  # agent-sandbox's four and kubevirts.kubevirt.io


def test_custom_resources_wait_for_crds_and_controller(dev: dict[str, Registration]) -> None:
    crds = {r.urn for r in _of_type(dev, ":CustomResourceDefinition") if "agents.x-k8s.io" in r.name}
    controller = _named(dev, "apps/v1:Deployment", CONTROLLER).urn
    template = _one(dev, ":SandboxTemplate")
    pool = _one(dev, ":SandboxWarmPool")
    for custom in (template, pool):
        assert crds <= set(custom.dependencies), custom.urn
        assert controller in custom.dependencies, custom.urn
    assert template.urn in pool.dependencies
    tenant_namespace = next(r for r in _of_type(dev, "core/v1:Namespace") if r.name == "agents-dev")
    assert tenant_namespace.urn in template.dependencies
    assert crds <= set(dev[controller].dependencies)


def test_namespaced_objects_wait_for_their_namespace(dev: dict[str, Registration]) -> None:
    namespaces = {r.name: r.urn for r in _of_type(dev, "core/v1:Namespace")}
    for registration in dev.values():
        namespace = registration.inputs.get("metadata", {}).get("namespace")
        if registration.type.startswith("kubernetes:") and namespace:
            assert namespaces[namespace] in registration.dependencies, registration.urn


def test_inputs_are_the_rendered_manifests(dev: dict[str, Registration]) -> None:
    pool = _one(dev, ":SandboxWarmPool")
    assert pool.inputs["apiVersion"] == "extensions.agents.x-k8s.io/v1beta1"
    assert pool.inputs["spec"]["sandboxTemplateRef"] == {"name": "python"}
    role = next(r for r in _of_type(dev, "rbac.authorization.k8s.io/v1:Role") if r.name == "agents-dev/sandbox-claimer")
    assert {"sandboxclaims"} in [set(rule["resources"]) for rule in role.inputs["rules"]]
    binding = next(r for r in _of_type(dev, ":RoleBinding") if r.name == "agents-dev/sandbox-claimer")
    assert binding.inputs["roleRef"]["name"] == "sandbox-claimer"


@pytest.mark.parametrize(("release", "api_version"), [("v0.4.6", "v1alpha1"), ("v0.5.6", "v1beta1")])
def test_custom_resource_types_follow_the_release(loader: UpstreamLoader, release: str, api_version: str) -> None:
    config = stack_config("dev")
    config["agentSandbox"]["version"] = release
    registrations = _deploy(config, loader)
    assert _one(registrations, ":SandboxTemplate").type == f"kubernetes:extensions.agents.x-k8s.io/{api_version}:SandboxTemplate"
    assert _one(registrations, ":SandboxWarmPool").type == f"kubernetes:extensions.agents.x-k8s.io/{api_version}:SandboxWarmPool"


def test_upgrade_keeps_template_and_pool_identity(loader: UpstreamLoader) -> None:
    """v0.4.6 -> v0.5.6 must update templates and pools in place, never replace them."""
    config = stack_config("dev")
    config["agentSandbox"]["version"] = "v0.4.6"
    before = _deploy(config, loader)
    config["agentSandbox"]["version"] = "v0.5.6"
    after = _deploy(config, loader)

    components_before = {u for u, r in before.items() if not r.custom}
    components_after = {u for u, r in after.items() if not r.custom}
    assert components_before == components_after

    for kind in (":SandboxTemplate", ":SandboxWarmPool"):
        old, new = _one(before, kind), _one(after, kind)
        assert (old.name, old.parent) == (new.name, new.parent)
        # The engine matches the old URN through the alias to the old type: same resource, updated.
        alias_urns = {new.urn.replace(f"${new.type}::", f"${alias}::") for alias in new.alias_types}
        assert old.urn in alias_urns

    unchanged = {u for u, r in before.items() if r.custom and ":Sandbox" not in r.type}
    assert unchanged <= set(after), "built-in objects were renamed by the upgrade"


def _run_main(config: dict[str, Any], stack: str = "dev") -> list[Registration]:
    pulumi.runtime.set_all_config({f"sandbox-infra:{k}": json.dumps(v) for k, v in config.items()})
    try:
        return run_under_mocks(lambda: runpy.run_path(str(ROOT / "__main__.py")), stack=stack)
    finally:
        pulumi.runtime.set_all_config({})


@pytest.mark.usefixtures("upstream")
def test_pulumi_program_applies_the_layers_under_the_engine_config() -> None:
    # The engine passes only the stack file's values; project and environment layers come from disk.
    stack_file = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]
    registrations = _run_main(project_config(stack_file), stack="prod")
    deployment = next(r for r in registrations if r.type == "kubernetes:apps/v1:Deployment")
    assert deployment.inputs["spec"]["replicas"] == 3  # from stacks/layers/prod.yaml
    pools = {r.name: r.inputs["spec"]["replicas"] for r in registrations if r.type.endswith(":SandboxWarmPool")}
    assert pools["agents-prod/browser"] == 10
    # The python pool is sized from the layer's SLO (60 claims/min, 8 s ready, 99 % warm hits):
    # the smallest pool whose Erlang loss B(N, 8 erlangs) is at most 1 %.
    python = int(pools["agents-prod/python"])
    assert erlang_b(python, 60 / 60 * 8) <= 0.01 < erlang_b(python - 1, 60 / 60 * 8)


def test_pulumi_program_reports_bad_config_without_traceback() -> None:
    config = stack_config("dev")
    config["warmPools"][0]["template"] = "nope"
    with pytest.raises(pulumi.RunError) as caught:
        _run_main(config)
    assert "sandbox-infra:warmPools[0].template = 'nope': does not name a template of this stack" in str(caught.value)


def test_the_engine_creates_exactly_the_rendered_graph(dev: dict[str, Registration], loader: UpstreamLoader) -> None:
    """One graph (components/manifests/graph.py): each object once, under the component its part
    names, and the offline render lists the same objects."""
    from components.manifests.common import identity
    from components.manifests.graph import stack_graph

    spec = load_stack("dev")
    owners = {identity(m): f"sandbox-infra:index:{part.component}::{part.name}"
              for part in stack_graph(spec, loader) for m in part.objects}
    created = {(r.inputs["kind"], r.inputs["metadata"].get("namespace", ""), r.inputs["metadata"]["name"]): r
               for r in dev.values() if r.custom and r.read_id is None and r.type.startswith("kubernetes:")
               and r.type != "pulumi:providers:kubernetes"}
    assert sorted(created) == sorted(identity(m) for m in render_stack(spec, loader))
    assert sorted(owners) == sorted(created)
    for key, registration in created.items():
        assert registration.parent.endswith(f"${owners[key]}"), (key, registration.parent)


def test_inside_a_component_each_object_waits_for_the_earlier_tiers(dev: dict[str, Registration]) -> None:
    from components.manifests.common import tier

    objects = [r for r in dev.values() if r.custom and r.read_id is None and "kind" in r.inputs]
    for registration in objects:
        earlier = {r.urn for r in objects if r.parent == registration.parent
                   and tier(r.inputs["kind"]) < tier(registration.inputs["kind"])}
        assert earlier <= set(registration.dependencies), registration.urn


def test_an_upstream_kind_nobody_placed_is_refused() -> None:
    from components.manifests.common import UnplacedKind, tier, unplaced_kinds

    assert unplaced_kinds([{"kind": "Deployment"}, {"kind": "MutatingWebhookConfiguration"}]) == [
        "MutatingWebhookConfiguration"]
    with pytest.raises(UnplacedKind):
        tier("MutatingWebhookConfiguration")
