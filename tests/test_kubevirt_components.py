"""KubeVirt, VM environments and the catalogue under Pulumi mocks: ordering (KubeVirt
Available before any VM), secrets marked secret, data protected, and bring-your-own
installs checked through real CRD lookups."""

from __future__ import annotations

import gc
import json
import logging
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.errors import ConfigError
from components.specs import spec_from_config
from components.specs.stack import StackSpec
from components.stack import deploy

from .kubevirt_support import (
    CLOUD_INIT_SECRET,
    SECRET_MARKERS,
    engine_spec,
    kubevirt_mirror,
    offline_loader,
    sealed,
    vm_stack_config,
)
from .pulumi_harness import CRD, ClusterWithCrds, Registration, run_under_mocks

KUBEVIRT_CR = "kubernetes:kubevirt.io/v1:KubeVirt"
POOL = "kubernetes:pool.kubevirt.io/v1beta1:VirtualMachinePool"
VM = "kubernetes:kubevirt.io/v1:VirtualMachine"
SECRET = "kubernetes:core/v1:Secret"


def _deploy(spec: StackSpec, tmp_path: Path, resource_mocks: pulumi.runtime.Mocks | None = None) -> list[Registration]:
    loader = offline_loader(tmp_path)
    return run_under_mocks(lambda: deploy(spec, loader), resource_mocks=resource_mocks)


def _one(registrations: list[Registration], type_: str, name: str) -> Registration:
    (found,) = [r for r in registrations if r.type == type_ and r.name == name]
    return found


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> list[Registration]:
    return _deploy(engine_spec(vm_stack_config()), tmp_path_factory.mktemp("managed"))


def test_vms_wait_for_kubevirt_available(managed: list[Registration]) -> None:
    cr = _one(managed, KUBEVIRT_CR, "kubevirt/kubevirt")
    assert cr.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Available"
    workloads = [r for r in managed if r.type in (POOL, VM)]
    assert sorted(r.name for r in workloads) == ["team-a/devbox", "team-b/builder", "team-b/sized"]
    for workload in workloads:
        assert cr.urn in workload.dependencies, f"{workload.name} may be created before KubeVirt is Available"


def test_kubevirt_cr_waits_for_operator_and_crd(managed: list[Registration]) -> None:
    cr = _one(managed, KUBEVIRT_CR, "kubevirt/kubevirt")
    operator = _one(managed, "kubernetes:apps/v1:Deployment", "kubevirt/virt-operator")
    crd = _one(managed, CRD, "kubevirts.kubevirt.io")
    assert {operator.urn, crd.urn} <= set(cr.dependencies)
    assert crd.retain_on_delete, "deleting the KubeVirt CRD would delete the CR and every VM"
    assert _one(managed, "kubernetes:scheduling.k8s.io/v1:PriorityClass", "kubevirt-cluster-critical").urn in operator.dependencies
    component = _one(managed, "sandbox-infra:index:KubeVirt", "kubevirt")
    assert cr.parent == component.urn and operator.parent == component.urn


def test_vm_workload_waits_for_its_secrets_and_network_policy(managed: list[Registration]) -> None:
    pool = _one(managed, POOL, "team-a/devbox")
    for type_, name in ((SECRET, "team-a/devbox-cloud-init"), (SECRET, "team-a/devbox-ssh-keys"),
                        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "team-a/devbox-vm"),
                        ("kubernetes:core/v1:Namespace", "team-a")):
        assert _one(managed, type_, name).urn in pool.dependencies, name
    environment = _one(managed, "sandbox-infra:index:VmEnvironment", "devbox")
    assert pool.parent == environment.urn
    assert _one(managed, "kubernetes:core/v1:Service", "team-a/devbox").parent == environment.urn


def _without_secrets(value: Any) -> Any:
    """The value with every Pulumi-secret subtree removed: what is stored and shown in clear."""
    if rpc.is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def test_secret_values_are_pulumi_secrets(managed: list[Registration]) -> None:
    secrets = [r for r in managed if r.type == SECRET]
    assert sorted(r.name for r in secrets) == [
        "team-a/devbox-cloud-init", "team-a/devbox-ssh-keys", "team-b/builder-cloud-init", "team-b/sized-cloud-init",
    ]
    for secret in secrets:
        assert {"data", "stringData"} <= set(secret.additional_secret_outputs)
        assert rpc.is_rpc_secret(secret.inputs["stringData"])
        revealed = json.dumps(rpc.unwrap_rpc_secret(secret.inputs["stringData"]))
        assert any(marker in revealed for marker in SECRET_MARKERS), "the real value must reach the Secret"
    clear = json.dumps([_without_secrets(r.inputs) for r in managed], default=str)
    for marker in SECRET_MARKERS:
        assert marker not in clear, "a secret value reached Pulumi as a plain (unencrypted) input"


def test_vms_with_persistent_disks_are_protected(managed: list[Registration], tmp_path: Path) -> None:
    assert _one(managed, POOL, "team-a/devbox").protect
    assert not _one(managed, POOL, "team-b/sized").protect
    assert not _one(managed, VM, "team-b/builder").protect
    config = _vm_only(vm_stack_config())
    config["runtimes"][0]["vmConfig"]["protectDisks"] = False
    assert not _one(_deploy(engine_spec(config), tmp_path), POOL, "team-a/devbox").protect


def _vm_only(config: dict[str, Any]) -> dict[str, Any]:
    """Just the VM runtimes on an external KubeVirt: quick to deploy under mocks."""
    config["kubevirt"]["install"] = "external"
    config["agentSandbox"] = {"install": "none"}
    del config["templates"], config["warmPools"]
    config["runtimes"] = [r for r in config["runtimes"] if r["executionKind"] == "kubevirt-vm"]
    return config


def test_data_volumes_need_cdi_to_be_registered(managed: list[Registration]) -> None:
    (cdi,) = [r for r in managed if r.read_id == "datavolumes.cdi.kubevirt.io"]
    assert cdi.type == CRD
    assert cdi.urn in _one(managed, POOL, "team-a/devbox").dependencies


def test_catalogue_component(managed: list[Registration]) -> None:
    component = _one(managed, "sandbox-infra:index:RuntimeCatalogue", "runtime-catalogue")
    config_map = _one(managed, "kubernetes:core/v1:ConfigMap", "sandbox-catalogue/runtime-catalogue")
    namespace = _one(managed, "kubernetes:core/v1:Namespace", "sandbox-catalogue")
    assert config_map.parent == component.urn and namespace.urn in config_map.dependencies
    assert sorted(json.loads(config_map.inputs["data"]["runtimes.json"])["runtimes"]) == [
        "builder", "devbox", "node", "python", "sized",
    ]


def test_inline_pod_runtime_reuses_template_and_pool_components(managed: list[Registration]) -> None:
    template = _one(managed, "kubernetes:extensions.agents.x-k8s.io/v1beta1:SandboxTemplate", "team-b/node")
    pool = _one(managed, "kubernetes:extensions.agents.x-k8s.io/v1beta1:SandboxWarmPool", "team-b/node")
    assert template.parent == _one(managed, "sandbox-infra:index:SandboxTemplate", "node").urn
    assert template.urn in pool.dependencies and pool.inputs["spec"]["replicas"] == 3


def test_offline_spec_deploys_with_redacted_secrets(tmp_path: Path) -> None:
    # A spec read offline from a stack file (tests, mocks) holds only ciphertext: the
    # Secret gets the redacted placeholder, still as a Pulumi secret.
    registrations = _deploy(spec_from_config(sealed(_vm_only(vm_stack_config()))), tmp_path)
    secret = _one(registrations, SECRET, "team-a/devbox-cloud-init")
    assert rpc.is_rpc_secret(secret.inputs["stringData"])
    assert rpc.unwrap_rpc_secret(secret.inputs["stringData"]) == {"userdata": "<secret>"}


def test_engine_refuses_secrets_it_did_not_decrypt() -> None:
    # Under the engine a `secure:` value still sealed came from a layer file, which the engine never reads.
    with pytest.raises(ConfigError, match=r"runtimes\[2\]\.vmConfig\.cloudInitTemplate: is a 'secure:' value in a layer file"):
        spec_from_config(sealed(vm_stack_config()), secret_keys={"runtimes"})


def _run_main(config: dict[str, Any], secret_keys: list[str]) -> list[Registration]:
    root = Path(__file__).resolve().parents[1]
    pulumi.runtime.set_all_config({f"sandbox-infra:{k}": json.dumps(v) for k, v in config.items()}, secret_keys)
    try:
        return run_under_mocks(lambda: runpy.run_path(str(root / "__main__.py")), stack="test")
    finally:
        pulumi.runtime.set_all_config({})


def test_pulumi_program_takes_decrypted_secrets_only_from_secret_keys() -> None:
    kubevirt_mirror()
    config = _vm_only(vm_stack_config())  # values as the engine passes them: decrypted
    registrations = _run_main(config, ["sandbox-infra:runtimes"])
    secret = _one(registrations, SECRET, "team-a/devbox-cloud-init")
    assert rpc.unwrap_rpc_secret(secret.inputs["stringData"]) == {"userdata": CLOUD_INIT_SECRET}
    with pytest.raises(pulumi.RunError) as caught:
        _run_main(config, [])  # set with `pulumi config set` without --secret
    assert "sandbox-infra:runtimes[0].vmConfig.cloudInitTemplate: must be a Pulumi secret" in str(caught.value)
    assert not any(marker in str(caught.value) for marker in SECRET_MARKERS)


# --- bring your own installs ------------------------------------------------------------

KUBEVIRT_CRDS = {
    "kubevirts.kubevirt.io", "virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io",
    "virtualmachinepools.pool.kubevirt.io",
}
AGENT_SANDBOX_CRDS = {
    "sandboxes.agents.x-k8s.io", "sandboxclaims.extensions.agents.x-k8s.io",
    "sandboxtemplates.extensions.agents.x-k8s.io", "sandboxwarmpools.extensions.agents.x-k8s.io",
}


def _byo_spec() -> StackSpec:
    config = vm_stack_config()
    config["kubevirt"]["install"] = "external"
    config["agentSandbox"] = {"install": "external", "version": "v0.4.6"}
    return engine_spec(config)


def test_bring_your_own_installs_look_up_their_crds_first(tmp_path: Path) -> None:
    cluster = ClusterWithCrds(KUBEVIRT_CRDS | AGENT_SANDBOX_CRDS | {"datavolumes.cdi.kubevirt.io"})
    registrations = _deploy(_byo_spec(), tmp_path, cluster)
    reads = {r.read_id: r for r in registrations if r.read_id}
    assert set(reads) == cluster.crds
    assert not [r for r in registrations if r.type in (KUBEVIRT_CR, "kubernetes:apps/v1:Deployment")]
    assert not [r for r in registrations if r.type == CRD and not r.read_id], "a BYO stack must not create CRDs"
    for workload in (r for r in registrations if r.type in (POOL, VM)):
        assert {reads[c].urn for c in KUBEVIRT_CRDS} <= set(workload.dependencies), workload.name
    for custom in (r for r in registrations if "agents.x-k8s.io" in r.type):
        assert "/v1alpha1:" in custom.type  # the external install's version decides the API version
        assert {reads[c].urn for c in AGENT_SANDBOX_CRDS} <= set(custom.dependencies), custom.name


@pytest.mark.parametrize("missing", ["virtualmachinepools.pool.kubevirt.io", "sandboxtemplates.extensions.agents.x-k8s.io"])
def test_a_missing_crd_stops_the_program_naming_it(tmp_path: Path, missing: str) -> None:
    cluster = ClusterWithCrds((KUBEVIRT_CRDS | AGENT_SANDBOX_CRDS | {"datavolumes.cdi.kubevirt.io"}) - {missing})
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)  # the failed lookup's future is expected to go unretrieved
    try:
        with pytest.raises(Exception, match=missing.replace(".", r"\.")):
            _deploy(_byo_spec(), tmp_path, cluster)
        gc.collect()
    finally:
        asyncio_log.setLevel(level)


def test_managed_installs_look_up_nothing_but_cdi(managed: list[Registration]) -> None:
    assert [r.read_id for r in managed if r.read_id] == ["datavolumes.cdi.kubevirt.io"]
