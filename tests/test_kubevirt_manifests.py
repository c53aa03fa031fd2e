"""KubeVirt and VM manifests: validated against the upstream KubeVirt OpenAPI document and
the `kubevirts.kubevirt.io` CRD schema, secure by construction, secrets never rendered."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from components import upstream
from components.manifests.common import Manifest
from components.manifests.kubevirt import PRIVILEGED_EXCEPTION, build_kubevirt_cr
from components.manifests.stack import render_stack
from components.specs import load_stack, spec_from_config
from components.specs.kubevirt import KubeVirtSpec
from components.upstream import UpstreamError, UpstreamLoader, kubevirt_operator_file
from sandbox_infra.cli import main
from sandbox_infra.render import manifests_yaml

from .kubevirt_support import (
    KUBEVIRT_DIR,
    SECRET_MARKERS,
    by_kind,
    engine_spec,
    kubevirt_mirror,
    named,
    offline_loader,
    sealed,
    vm_stack_config,
)
from .schemas import KUBEVIRT_DEFINITIONS, errors_of, kubevirt_crd_validator, kubevirt_validator, validation_errors


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    """The VM test stack as the engine renders it (secrets decrypted in the spec)."""
    return render_stack(engine_spec(vm_stack_config()), offline_loader(tmp_path_factory.mktemp("kv")))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    return render_stack(load_stack("dev"), offline_loader(tmp_path_factory.mktemp("dev")))


# --- schema validation ----------------------------------------------------------------

def test_every_rendered_object_matches_the_upstream_schemas(rendered: list[Manifest], dev: list[Manifest]) -> None:
    """KubeVirt kinds against KubeVirt's OpenAPI document (the CR also against its CRD),
    built-in kinds against the Kubernetes OpenAPI (tests/schemas.py)."""
    problems = {
        f"{m['kind']} {m['metadata'].get('namespace', '')}/{m['metadata']['name']}": errors
        for m in [*rendered, *dev] if (errors := validation_errors(m, "v0.5.6"))
    }
    assert problems == {}
    kinds = {m["kind"] for m in [*rendered, *dev]}
    assert {kind for _version, kind in KUBEVIRT_DEFINITIONS} <= kinds
    assert {"Secret", "Service", "NetworkPolicy", "ConfigMap", "PriorityClass"} <= kinds


def test_the_schema_check_catches_what_the_api_server_would_reject(rendered: list[Manifest]) -> None:
    pool = copy.deepcopy(named(rendered, "VirtualMachinePool", "devbox"))
    vmi = pool["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]
    vmi["volumes"][1]["cloudInitNoCloud"]["userDataSecret"] = "typo"  # unknown field
    vmi["domain"]["cpu"]["cores"] = "two"  # wrong type
    del vmi["domain"]["devices"]  # required
    errors = errors_of(kubevirt_validator("v1beta1.VirtualMachinePool"), pool)
    assert any("userDataSecret" in e for e in errors)
    assert any("'two' is not of type 'integer'" in e for e in errors)
    assert any("'devices' is a required property" in e for e in errors)


CR_VARIANTS = [
    {},
    {"useEmulation": True, "featureGates": ["Snapshot", "VMExport", "ExpandDisks"], "imagePullPolicy": "Always"},
    {"uninstallStrategy": "RemoveWorkloads", "launcherSeccompRuntimeDefault": False},
    {"infra": {"replicas": 3, "nodeSelector": {"node-role.kubernetes.io/infra": ""},
               "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}]},
     "workloads": {"nodeSelector": {"kubevirt.io/schedulable": "true"}, "tolerations": [{"key": "vms", "value": "yes"}]}},
]


@pytest.mark.parametrize("settings", CR_VARIANTS)
@pytest.mark.parametrize("wait", [True, False])
def test_kubevirt_cr_matches_the_kubevirts_crd_schema(settings: dict[str, Any], wait: bool) -> None:
    kubevirt_mirror()
    spec = KubeVirtSpec.model_validate(settings)
    cr = build_kubevirt_cr(spec, wait, "kubevirt")
    assert errors_of(kubevirt_crd_validator(), cr) == []
    assert errors_of(kubevirt_validator("v1.KubeVirt"), cr) == []


def test_the_crd_schema_check_can_fail() -> None:
    kubevirt_mirror()
    cr = build_kubevirt_cr(KubeVirtSpec(), True, "kubevirt")
    cr["spec"]["configuration"]["developerConfiguration"]["useEmulaton"] = True
    cr["spec"]["uninstallStrategy"] = 7
    errors = errors_of(kubevirt_crd_validator(), cr)
    assert any("useEmulaton" in e for e in errors) and any("7 is not of type 'string'" in e for e in errors)


def test_kubevirt_cr_settings_reach_the_cr() -> None:
    spec = KubeVirtSpec.model_validate(CR_VARIANTS[1] | CR_VARIANTS[3])
    cr = build_kubevirt_cr(spec, True, "kubevirt")["spec"]
    assert cr["configuration"]["developerConfiguration"] == {
        "featureGates": ["ExpandDisks", "Snapshot", "VMExport"], "useEmulation": True,
    }
    assert cr["imagePullPolicy"] == cr["configuration"]["imagePullPolicy"] == "Always"
    assert cr["uninstallStrategy"] == "BlockUninstallIfWorkloadsExist"
    assert cr["infra"]["replicas"] == 3
    assert cr["infra"]["nodePlacement"]["tolerations"] == [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}]
    assert cr["workloads"]["nodePlacement"]["nodeSelector"] == {"kubevirt.io/schedulable": "true"}
    assert cr["configuration"]["seccompConfiguration"]["virtualMachineInstanceProfile"]["customProfile"] == {
        "runtimeDefaultProfile": True,
    }
    defaults = build_kubevirt_cr(KubeVirtSpec(), True, "kubevirt")["spec"]
    assert "useEmulation" not in defaults["configuration"]["developerConfiguration"]
    assert "infra" not in defaults and "workloads" not in defaults


def test_kubevirt_cr_waits_for_available_unless_workloads_cannot_run() -> None:
    waiting = build_kubevirt_cr(KubeVirtSpec(), True, "kubevirt")
    assert waiting["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Available", "pulumi.com/patchForce": "true"}
    no_nodes = build_kubevirt_cr(KubeVirtSpec(), False, "kubevirt")
    assert no_nodes["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true", "pulumi.com/patchForce": "true"}


# --- the operator install ---------------------------------------------------------------

def test_only_the_kubevirt_namespace_is_privileged(dev: list[Manifest]) -> None:
    namespaces = {m["metadata"]["name"]: m["metadata"] for m in by_kind(dev, "Namespace")}
    assert {"kubevirt", "agent-sandbox-system", "agents-dev", "sandbox-catalogue"} <= set(namespaces)
    for name, meta in namespaces.items():
        enforce = meta["labels"].get("pod-security.kubernetes.io/enforce")
        if name == "kubevirt":
            assert enforce == "privileged"
            assert "virt-handler" in meta["annotations"][PRIVILEGED_EXCEPTION]
        else:
            assert enforce == "restricted", name
            assert PRIVILEGED_EXCEPTION not in meta.get("annotations", {})


def test_operator_install_is_complete_and_ordered(dev: list[Manifest]) -> None:
    kinds = [m["kind"] for m in dev]
    operator = named(dev, "Deployment", "virt-operator")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/kubevirt/virt-operator:v1.9.0"
    assert named(dev, "CustomResourceDefinition", "kubevirts.kubevirt.io")
    assert named(dev, "PriorityClass", "kubevirt-cluster-critical")
    # Namespaces, CRDs and PriorityClass before the operator; the CR after it; VMs last.
    assert kinds.index("PriorityClass") < kinds.index("Deployment") < kinds.index("KubeVirt") < kinds.index("VirtualMachinePool")


def test_remote_manifest_unpinned_warns_pinned_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = (kubevirt_mirror() / KUBEVIRT_DIR / "kubevirt-operator.yaml").read_bytes()
    fetched: list[str] = []
    monkeypatch.setattr(upstream, "_download", lambda url: fetched.append(url) or fixture)
    no_mirror = UpstreamLoader(mirror=tmp_path / "empty", cache=tmp_path / "cache")

    unpinned = kubevirt_operator_file("v1.9.0")
    assert no_mirror.read_documents(unpinned)
    assert fetched == ["https://github.com/kubevirt/kubevirt/releases/download/v1.9.0/kubevirt-operator.yaml"]
    assert len(no_mirror.warnings) == 1 and "not pinned by a sha256 digest" in no_mirror.warnings[0]

    digest = hashlib.sha256(fixture).hexdigest()
    pinned = UpstreamLoader(mirror=None, cache=tmp_path / "cache2")
    assert pinned.read_bytes(kubevirt_operator_file("v1.9.0", sha256=digest)) == fixture
    assert pinned.warnings == []
    with pytest.raises(UpstreamError, match=re.escape("sha256 mismatch for pinned file kubevirt/v1.9.0/kubevirt-operator.yaml")):
        UpstreamLoader(mirror=None, cache=tmp_path / "cache3").read_bytes(kubevirt_operator_file("v1.9.0", sha256="0" * 64))


def test_a_sha256_pin_also_guards_the_mirror(tmp_path: Path) -> None:
    loader = offline_loader(tmp_path)
    config = sealed(vm_stack_config())
    config["kubevirt"]["operatorManifest"] = {"sha256": "1" * 64}
    with pytest.raises(UpstreamError, match="sha256 mismatch"):
        render_stack(spec_from_config(config), loader)
    assert loader.warnings == []  # the mirror is local: no warning when unpinned


def test_external_installs_render_no_install_objects(tmp_path: Path) -> None:
    config = sealed(vm_stack_config())
    config["kubevirt"]["install"] = "external"
    config["agentSandbox"] = {"install": "external"}
    manifests = render_stack(spec_from_config(config), offline_loader(tmp_path))
    assert not by_kind(manifests, "KubeVirt") and not by_kind(manifests, "CustomResourceDefinition")
    assert not by_kind(manifests, "Deployment")
    assert {m["metadata"]["name"] for m in by_kind(manifests, "VirtualMachinePool")} == {"devbox", "sized"}


# --- VM environments ---------------------------------------------------------------------

def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}[{index}]")
    return found


def _vmi(workload: Manifest) -> dict[str, Any]:
    spec = workload["spec"]
    vm = spec["virtualMachineTemplate"]["spec"] if workload["kind"] == "VirtualMachinePool" else spec
    return vm["template"]


def test_cloud_init_only_through_a_secret_ref(rendered: list[Manifest]) -> None:
    secrets = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in by_kind(rendered, "Secret")}
    workloads = by_kind(rendered, "VirtualMachinePool") + by_kind(rendered, "VirtualMachine")
    assert len(workloads) == 3
    for workload in workloads:
        for path, _value in _walk(workload):
            assert not path.endswith((".userData", ".userDataBase64", ".networkData")), path
        sources = [v["cloudInitNoCloud"] for v in _vmi(workload)["spec"]["volumes"] if "cloudInitNoCloud" in v]
        assert len(sources) == 1 and set(sources[0]) == {"secretRef"}
        secret = secrets[(workload["metadata"]["namespace"], sources[0]["secretRef"]["name"])]
        assert set(secret["stringData"]) == {"userdata"}


def test_ssh_keys_come_from_a_secret_through_access_credentials(rendered: list[Manifest]) -> None:
    devbox = _vmi(named(rendered, "VirtualMachinePool", "devbox"))["spec"]
    (credential,) = devbox["accessCredentials"]
    secret_name = credential["sshPublicKey"]["source"]["secret"]["secretName"]
    assert named(rendered, "Secret", secret_name)["metadata"]["namespace"] == "team-a"
    assert credential["sshPublicKey"]["propagationMethod"] == {"noCloud": {}}
    assert "accessCredentials" not in _vmi(named(rendered, "VirtualMachine", "builder"))["spec"]


def test_service_reaches_the_vm_launcher_pods_on_the_agent_port(rendered: list[Manifest]) -> None:
    for kind, name in (("VirtualMachinePool", "devbox"), ("VirtualMachine", "builder"), ("VirtualMachinePool", "sized")):
        workload = named(rendered, kind, name)
        service = named(rendered, "Service", name)
        vmi = _vmi(workload)
        pod_labels = {**vmi["metadata"]["labels"], "kubevirt.io": "virt-launcher"}  # KubeVirt adds the latter
        assert service["metadata"]["namespace"] == workload["metadata"]["namespace"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        forwarded = {p["port"] for p in vmi["spec"]["domain"]["devices"]["interfaces"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} == forwarded
        (interface,) = vmi["spec"]["domain"]["devices"]["interfaces"]
        assert "masquerade" in interface and vmi["spec"]["networks"] == [{"name": interface["name"], "pod": {}}]
    assert {p["port"] for p in named(rendered, "Service", "devbox")["spec"]["ports"]} == {8888, 22}
    assert {p["port"] for p in named(rendered, "Service", "builder")["spec"]["ports"]} == {9000}
    # One VM: the Service selects exactly its launcher pod by kubevirt.io/domain.
    assert named(rendered, "Service", "builder")["spec"]["selector"]["kubevirt.io/domain"] == "builder"


def test_vm_network_policy_denies_by_default_and_allowlists_egress(rendered: list[Manifest]) -> None:
    policy = named(rendered, "NetworkPolicy", "devbox-vm")
    pool = named(rendered, "VirtualMachinePool", "devbox")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= _vmi(pool)["metadata"]["labels"].items()
    (ingress,) = policy["spec"]["ingress"]
    assert {p["port"] for p in ingress["ports"]} == {8888, 22}
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}]
    dns, internet = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert internet["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]
    assert internet["ports"] == [{"port": 443, "protocol": "TCP"}]
    # The single VM allows no egress beyond DNS; the Unmanaged runtime leaves it to its enforcer.
    assert len(named(rendered, "NetworkPolicy", "builder-vm")["spec"]["egress"]) == 1
    assert not [m for m in by_kind(rendered, "NetworkPolicy") if m["metadata"]["name"] == "sized-vm"]
    assert named(rendered, "VirtualMachinePool", "sized")["metadata"]["annotations"]["sandbox-infra.dev/egress-enforcer"] == "cilium"


def test_vm_sizing_and_persistent_disks(rendered: list[Manifest]) -> None:
    pool = named(rendered, "VirtualMachinePool", "devbox")
    vm = pool["spec"]["virtualMachineTemplate"]["spec"]
    domain = vm["template"]["spec"]["domain"]
    assert domain["cpu"] == {"cores": 2} and domain["memory"] == {"guest": "2Gi"}
    assert domain["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert pool["spec"]["replicas"] == 2 and pool["spec"]["updateStrategy"] == {"proactive": {}}
    templates = {t["metadata"]["name"]: t["spec"] for t in vm["dataVolumeTemplates"]}
    assert templates["devbox-data"]["storage"]["storageClassName"] == "fast"
    assert templates["devbox-data"]["source"] == {"blank": {}}
    assert templates["devbox-cache"]["source"] == {"registry": {"url": "docker://quay.io/containerdisks/cache:1.0"}}
    volumes = {v["name"]: v for v in vm["template"]["spec"]["volumes"]}
    assert volumes["data"]["dataVolume"]["name"] in templates and volumes["cache"]["dataVolume"]["name"] in templates
    assert volumes["rootdisk"]["containerDisk"]["image"] == "quay.io/containerdisks/fedora:40"

    sized = named(rendered, "VirtualMachinePool", "sized")["spec"]
    assert sized["replicas"] == 0 and sized["updateStrategy"] == {"opportunistic": {}}
    sized_vm = sized["virtualMachineTemplate"]["spec"]
    assert sized_vm["instancetype"] == {"name": "u1.medium"} and sized_vm["preference"] == {"name": "fedora"}
    assert not {"cpu", "memory", "resources"} & set(sized_vm["template"]["spec"]["domain"])
    single = named(rendered, "VirtualMachine", "builder")["spec"]
    assert single["runStrategy"] == "RerunOnFailure"


# --- secrets never rendered ----------------------------------------------------------------

def test_no_secret_value_in_render_output(rendered: list[Manifest]) -> None:
    text = manifests_yaml(rendered)
    for marker in SECRET_MARKERS:
        assert marker not in text
    for secret in by_kind(rendered, "Secret"):
        assert set(secret["stringData"].values()) == {"<secret>"}
        assert "data" not in secret


def test_cli_render_of_the_dev_stack_shows_no_ciphertext(capsys: pytest.CaptureFixture[str]) -> None:
    kubevirt_mirror()
    stack = (Path(__file__).resolve().parents[1] / "stacks" / "Pulumi.dev.yaml").read_text()
    ciphertexts = [line.split("secure:")[1].strip() for line in stack.splitlines() if "secure:" in line]
    assert len(ciphertexts) == 2
    assert main(["render", "--stack", "dev"]) == 0
    out, err = capsys.readouterr()
    assert "KubeVirt v1.9.0" in err and "VirtualMachinePool" in err
    for ciphertext in ciphertexts:
        assert ciphertext not in out and ciphertext.split(":")[-1] not in out
    assert out.count("<secret>") == 2


def test_cli_refuses_plain_text_secrets_without_echoing_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    config = {f"sandbox-infra:{key}": value for key, value in vm_stack_config().items()}
    (tmp_path / "Pulumi.leaky.yaml").write_text(yaml.safe_dump({"config": config}))
    assert main(["--stacks-dir", str(tmp_path), "render", "--stack", "leaky"]) == 2
    out, err = capsys.readouterr()
    assert "must be a Pulumi secret" in err and out == ""
    for marker in SECRET_MARKERS:
        assert marker not in err


def test_config_explain_shows_secrets_redacted_with_their_layer(capsys: pytest.CaptureFixture[str]) -> None:
    stack = (Path(__file__).resolve().parents[1] / "stacks" / "Pulumi.dev.yaml").read_text()
    ciphertexts = [line.split("secure:")[1].strip() for line in stack.splitlines() if "secure:" in line]
    assert main(["config", "explain", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if ".vmConfig.cloudInitTemplate" in row)
    assert line.split()[1:] == ['"<secret>"', "stacks/Pulumi.dev.yaml"]
    assert not any(ciphertext in out for ciphertext in ciphertexts)


def test_cli_warns_about_an_unpinned_remote_operator_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = (kubevirt_mirror() / KUBEVIRT_DIR / "kubevirt-operator.yaml").read_bytes()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "agent-sandbox").symlink_to(kubevirt_mirror() / "agent-sandbox")  # no kubevirt/ in this mirror
    monkeypatch.setenv("UPSTREAM_DIR", str(mirror))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(upstream, "_download", lambda url: fixture)
    assert main(["render", "--stack", "dev"]) == 0
    err = capsys.readouterr().err
    assert "warning: https://github.com/kubevirt/kubevirt/releases/download/v1.9.0/kubevirt-operator.yaml: " in err
    assert "not pinned by a sha256 digest" in err
