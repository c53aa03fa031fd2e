"""Stack config for KubeVirt and the runtime catalogue: prerequisites fail early, secrets
must be Pulumi secrets, and every bad value gets one clear message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.errors import ConfigError
from components.specs import load_stack, spec_from_config
from components.specs.loader import secret_fields

from .kubevirt_support import CLOUD_INIT_SECRET, SECRET_MARKERS, engine_spec, sealed, vm_stack_config


def _error(config: dict[str, Any], secret_keys: set[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        spec_from_config(config, source="Pulumi.test.yaml", secret_keys=secret_keys)
    message = str(caught.value)
    for marker in SECRET_MARKERS:
        assert marker not in message, "a config error message leaked a secret value"
    return message


def test_vm_stack_loads_offline_with_sealed_secrets() -> None:
    spec = spec_from_config(sealed(vm_stack_config()))
    secrets = dict(secret_fields(spec))
    assert ("runtimes", 2, "vmConfig", "cloudInitTemplate") in secrets
    assert all(value.sealed for value in secrets.values())
    assert [t.name for t in spec.all_templates()] == ["python", "node"]
    assert [(p.name, p.template, p.replicas) for p in spec.all_warm_pools()] == [("python", "python", 2), ("node", "node", 3)]


def test_engine_config_reveals_secrets_but_never_prints_them() -> None:
    spec = engine_spec(vm_stack_config())
    value = spec.runtimes[2].vm_config.cloud_init_template
    assert value.reveal() == CLOUD_INIT_SECRET
    for text in (repr(spec), str(spec), spec.model_dump_json(by_alias=True)):
        assert not any(marker in text for marker in SECRET_MARKERS)


def test_dev_stack_has_a_vm_runtime_next_to_its_pod_runtime() -> None:
    spec = load_stack("dev")
    kinds = {r.id: r.execution_kind for r in spec.runtimes}
    assert sorted(kinds.values()) == ["kubevirt-vm", "pod"]
    assert spec.kubevirt is not None and spec.kubevirt.use_emulation is True
    assert spec.kubevirt.uninstall_strategy == "BlockUninstallIfWorkloadsExist"
    assert all(value.sealed for _path, value in secret_fields(spec)), "dev stack secrets must be secure: values"


def test_kubevirt_defaults_are_data_preserving() -> None:
    spec = spec_from_config(sealed(vm_stack_config()))
    assert spec.kubevirt.install == "managed" and spec.kubevirt.version == "v1.9.0"
    assert spec.kubevirt.uninstall_strategy == "BlockUninstallIfWorkloadsExist"
    assert spec.kubevirt.launcher_seccomp_runtime_default is True
    assert spec.runtimes[2].vm_config.protect_disks is True


def _without(config: dict[str, Any], key: str) -> dict[str, Any]:
    result = copy.deepcopy(config)
    del result[key]
    return result


def test_vm_runtime_without_kubevirt_is_a_config_error() -> None:
    message = _error(sealed(_without(vm_stack_config(), "kubevirt")))
    for index in (2, 3, 4):
        assert f"sandbox-infra:runtimes[{index}].executionKind = 'kubevirt-vm': needs KubeVirt" in message
    assert "install: managed" in message and "install: external" in message


def test_pod_runtime_without_agent_sandbox_is_a_config_error() -> None:
    config = sealed(vm_stack_config())
    config["agentSandbox"] = {"install": "none"}
    message = _error(config)
    assert "sandbox-infra:runtimes[0].executionKind = 'pod': needs agent-sandbox" in message
    assert "sandbox-infra:runtimes[1].executionKind = 'pod': needs agent-sandbox" in message
    assert "sandbox-infra:templates: needs agent-sandbox" in message
    assert "sandbox-infra:warmPools: needs agent-sandbox" in message


def test_vm_only_stack_needs_no_agent_sandbox() -> None:
    config = sealed(vm_stack_config())
    config["agentSandbox"] = {"install": "none"}
    del config["templates"], config["warmPools"]
    config["runtimes"] = config["runtimes"][2:]
    spec = spec_from_config(config)
    assert [r.execution_kind for r in spec.runtimes] == ["kubevirt-vm"] * 3


def test_plain_text_secret_in_a_stack_file_is_refused() -> None:
    message = _error(vm_stack_config())  # offline: values must be {secure: ...}
    assert "sandbox-infra:runtimes[2].vmConfig.cloudInitTemplate: must be a Pulumi secret" in message
    assert "sandbox-infra:runtimes[2].vmConfig.sshAuthorizedKeys: must be a Pulumi secret" in message
    assert "pulumi config set --secret --path 'sandbox-infra:runtimes[2].vmConfig.cloudInitTemplate'" in message


def test_plain_text_secret_under_the_engine_is_refused() -> None:
    # Under the engine values arrive decrypted; a key the engine does not mark secret was set in clear.
    message = _error(vm_stack_config(), secret_keys={"kubevirt"})
    assert "sandbox-infra:runtimes[2].vmConfig.cloudInitTemplate: must be a Pulumi secret" in message
    assert message.count("must be a Pulumi secret") == 4  # 3 cloud-init + 1 SSH key


# (config change, fragments the message must contain)
BAD_RUNTIME_CONFIG = [
    (lambda c: c["kubevirt"].update(featureGates=["Root"]),
     ["sandbox-infra:kubevirt.featureGates[0] = 'Root'", "'Snapshot'", "'VMExport'"]),
    (lambda c: c["kubevirt"].update(uninstallStrategy="Yolo"),
     ["kubevirt.uninstallStrategy = 'Yolo'", "'BlockUninstallIfWorkloadsExist'"]),
    (lambda c: c["kubevirt"].update(operatorManifest={"sha256": "abc"}),
     ["kubevirt.operatorManifest.sha256 = 'abc'", "[a-f0-9]{64}"]),
    (lambda c: c["kubevirt"].update(operatorManifest={"url": "http://example.com/op.yaml"}),
     ["kubevirt.operatorManifest.url = 'http://example.com/op.yaml'", "https://"]),
    (lambda c: c["kubevirt"].update(version="v1.2.0"), ["kubevirt.version = 'v1.2.0'", "'v1.9.0'"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(instancetype={"name": "u1.small"}),
     ["sandbox-infra:runtimes[2].vmConfig", "either cpu and memory, or instancetype"]),
    (lambda c: c["runtimes"][2]["vmConfig"].pop("memory"), ["runtimes[2].vmConfig", "set cpu and memory"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(cpu=0), ["runtimes[2].vmConfig.cpu = 0", "greater than or equal to 1"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(containerDiskImage="fedora"),
     ["runtimes[2].vmConfig.containerDiskImage = 'fedora'", "pinned"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(disks=[{"name": "rootdisk", "size": "1Gi"}]),
     ["runtimes[2].vmConfig", "not 'rootdisk'"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(userData="#cloud-config"),
     ["runtimes[2].vmConfig.userData: unknown key", "cloudInitTemplate"]),
    (lambda c: c["runtimes"][2].update(executionKind="lambda"),
     ["runtimes[2].executionKind = 'lambda'", "'pod' or 'kubevirt-vm'"]),
    (lambda c: c["runtimes"][2].update(container=c["runtimes"][1]["container"]),
     ["sandbox-infra:runtimes[2]", "kubevirt-vm takes vmConfig, not container"]),
    (lambda c: c["runtimes"][1].update(sandboxTemplate="python"),
     ["sandbox-infra:runtimes[1]", "exactly one of container or sandboxTemplate"]),
    (lambda c: c["runtimes"][0].update(tenant="team-a"),
     ["sandbox-infra:runtimes[0]", "sandboxTemplate publishes an existing template", "tenant"]),
    (lambda c: c["runtimes"][0].update(sandboxTemplate="ruby"),
     ["sandbox-infra:runtimes[0].sandboxTemplate = 'ruby'", "allowed: 'python'"]),
    (lambda c: c["runtimes"][1].update(id="python"),
     ["sandbox-infra:runtimes[1].id = 'python'", "already the name of a template or warm pool"]),
    (lambda c: c["runtimes"][3].update(id="devbox"),
     ["sandbox-infra:runtimes[3].id = 'devbox'", "already used by another entry of runtimes"]),
    (lambda c: c["runtimes"][2].update(tenant="team-z"),
     ["sandbox-infra:runtimes[2].tenant = 'team-z'", "allowed: 'team-a', 'team-b'"]),
    (lambda c: c["runtimes"][2].pop("tenant"), ["sandbox-infra:runtimes[2]", "tenant is required"]),
    (lambda c: c["runtimes"][2]["warm"].update(replicas=50),
     ["sandbox-infra:runtimes[2].warm.replicas = 50", "policy.maxWarmPoolReplicas=20"]),
    (lambda c: c["runtimes"][1]["warm"].update(replicas=50),
     ["sandbox-infra:runtimes[1].warm.replicas = 50", "policy.maxWarmPoolReplicas=20"]),
    (lambda c: c["runtimes"][3].update(warm={"replicas": 1}), ["sandbox-infra:runtimes[3]", "mode single runs one VM"]),
    (lambda c: c["runtimes"][1]["container"]["resources"]["limits"].update({"nvidia.com/gpu": 1}),
     ["sandbox-infra:runtimes[1].warm.allowGpu = False", "requests GPUs"]),
    (lambda c: c.update(policy={"requireRuntimeClass": True}),
     ["sandbox-infra:runtimes[1].container.runtimeClassName: is required", "templates[0].runtimeClassName"]),
    (lambda c: c["runtimes"][2]["vmConfig"].update(labels={"kubevirt.io/domain": "x"}),
     ["runtimes[2].vmConfig.labels: unknown key"]),
    (lambda c: c["runtimes"][2].update(labels={"kubevirt.io/domain": "x"}),
     ["sandbox-infra:runtimes[2].labels", "reserved prefix 'kubevirt.io'"]),
]


@pytest.mark.parametrize(("change", "fragments"), BAD_RUNTIME_CONFIG)
def test_bad_runtime_config_is_one_clear_message(change: Any, fragments: list[str]) -> None:
    config = sealed(vm_stack_config())
    change(config)
    message = _error(config)
    assert message.startswith("Pulumi.test.yaml: invalid config (")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
