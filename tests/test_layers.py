"""Layered config: project defaults < environment < stack file, and `config explain`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.specs.layers import BUILT_IN, Layer, merge
from components.specs.loader import load_layered, load_stack
from sandbox_infra.cli import main


def _write(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": {f"sandbox-infra:{k}": v for k, v in config.items()}}))


TEMPLATE = {
    "name": "python", "tenant": "team", "image": "ghcr.io/example/python:3.12",
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
}


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    _write(tmp_path / "layers" / "project.yaml", {
        "policy": {"enforcement": "mandatory", "maxWarmPoolReplicas": 20},
        "agentSandbox": {"version": "v0.4.6", "controller": {"replicas": 1}},
        "tenants": [{"name": "team", "quota": {"pods": 10}}],
        "templates": [TEMPLATE],
        "warmPools": [{"name": "python", "template": "python", "replicas": 1}],
    })
    _write(tmp_path / "layers" / "prod.yaml", {
        "agentSandbox": {"controller": {"replicas": 3}},
        "warmPools": [{"name": "python", "replicas": 8}],
        "policy": {"allowedRegistries": ["ghcr.io/example", "quay.io/example"]},
    })
    _write(tmp_path / "Pulumi.prod-a.yaml", {
        "cluster": {"name": "prod-a", "environment": "prod"},
        "agentSandbox": {"version": "v0.5.6"},
        "policy": {"allowedRegistries": ["ghcr.io/example"]},
        "warmPools": [{"name": "python", "replicas": 12}, {"name": "extra", "template": "python", "replicas": 1}],
    })
    _write(tmp_path / "Pulumi.dev-a.yaml", {"cluster": {"name": "dev-a", "environment": "dev"}})
    return tmp_path


def test_later_layers_win_key_by_key(stacks: Path) -> None:
    spec = load_stack("prod-a", stacks)
    assert spec.agent_sandbox.version == "v0.5.6"  # stack file
    assert spec.agent_sandbox.controller.replicas == 3  # prod layer
    assert spec.policy.enforcement == "mandatory"  # project layer
    assert spec.tenants[0].quota.pods == 10  # project layer, untouched by later ones
    assert spec.tenants[0].quota.requests_cpu == "8"  # built-in default


def test_named_lists_merge_by_name_and_other_lists_are_replaced(stacks: Path) -> None:
    spec = load_stack("prod-a", stacks)
    assert [(p.name, p.template, p.replicas) for p in spec.warm_pools] == [("python", "python", 12), ("extra", "python", 1)]
    assert spec.policy.allowed_registries == ["ghcr.io/example"]


def test_environment_layer_applies_only_to_its_environment(stacks: Path) -> None:
    spec = load_stack("dev-a", stacks)  # there is no layers/dev.yaml: project layer only
    assert spec.agent_sandbox.controller.replicas == 1
    assert spec.warm_pools[0].replicas == 1


def test_explain_names_the_layer_of_every_value(stacks: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--stacks-dir", str(stacks), "config", "explain", "--stack", "prod-a", "--format", "json"]) == 0
    rows = {row["key"]: (row["value"], row["layer"]) for row in json.loads(capsys.readouterr().out)}
    # layers are named relative to the project root (the stacks directory's parent)
    project, prod_layer, stack_file = (f"{stacks.name}/{f}" for f in ("layers/project.yaml", "layers/prod.yaml",
                                                                      "Pulumi.prod-a.yaml"))
    assert rows["sandbox-infra:agentSandbox.controller.replicas"] == (3, prod_layer)
    assert rows["sandbox-infra:agentSandbox.version"] == ("v0.5.6", stack_file)
    assert rows["sandbox-infra:policy.enforcement"] == ("mandatory", project)
    assert rows["sandbox-infra:warmPools[0].replicas"] == (12, stack_file)
    assert rows["sandbox-infra:warmPools[0].template"] == ("python", project)
    assert rows["sandbox-infra:warmPools[0].updateStrategy"] == ("OnReplenish", BUILT_IN)
    assert rows["sandbox-infra:policy.allowedRegistries[0]"] == ("ghcr.io/example", stack_file)
    assert "sandbox-infra:policy.allowedRegistries[1]" not in rows


def test_explain_table_for_shipped_stack(capsys: pytest.CaptureFixture) -> None:
    assert main(["config", "explain", "--stack", "prod"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["KEY", "VALUE", "LAYER"]
    assert ["sandbox-infra:agentSandbox.controller.replicas", "3", "stacks/layers/prod.yaml"] in rows
    assert ["sandbox-infra:cluster.name", '"prod-eu-west"', "stacks/Pulumi.prod.yaml"] in rows


def test_replacing_a_subtree_forgets_the_old_origins() -> None:
    layered = merge([
        Layer("a", {"policy": {"allowedRegistries": ["x", "y"]}}),
        Layer("b", {"policy": {"allowedRegistries": ["z"]}}),
    ])
    assert layered.config == {"policy": {"allowedRegistries": ["z"]}}
    assert layered.origin == {("policy", "allowedRegistries", 0): "b"}


def test_bad_values_in_a_layer_are_reported_like_any_config(stacks: Path) -> None:
    _write(stacks / "layers" / "prod.yaml", {"agentSandbox": {"controller": {"replicas": 0}}})
    assert main(["--stacks-dir", str(stacks), "render", "--stack", "prod-a"]) == 2


def test_shipped_stacks_share_their_environment_layer() -> None:
    layered, _ = load_layered("prod")
    assert layered.source_of(("agentSandbox", "controller", "replicas")) == "stacks/layers/prod.yaml"
