"""Manifest builders as plain functions: what the install, templates, pools and tenants contain."""

from __future__ import annotations

from typing import Any

import pytest

from components.errors import ConfigError
from components.manifests.agent_sandbox import CONTROLLER, build_agent_sandbox
from components.manifests.sandbox_template import build_cilium_network_policy, build_sandbox_template
from components.manifests.stack import render_stack
from components.manifests.tenant import build_tenant
from components.manifests.warm_pool import build_warm_pool
from components.specs import spec_from_config
from components.specs.loader import available_stacks
from components.upstream import UpstreamLoader

from .conftest import stack_config


def _spec(config: dict[str, Any], **agent_sandbox: Any):
    return spec_from_config({**config, "agentSandbox": agent_sandbox} if agent_sandbox else config)


def _one(manifests: list[dict], kind: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("release", ["v0.4.6", "v0.5.6"])
def test_install_has_one_controller_with_extensions(minimal_config, loader: UpstreamLoader, release: str) -> None:
    spec = _spec(minimal_config, version=release)
    manifests = build_agent_sandbox(spec.agent_sandbox, spec.cluster.wait_for_workloads, loader)
    deployment = _one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == CONTROLLER
    assert "--extensions" in container["args"]
    assert container["image"] == f"registry.k8s.io/agent-sandbox/agent-sandbox-controller:{release}"
    assert not any(m["kind"] == "Deployment" and m is not deployment for m in manifests)
    crds = sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "CustomResourceDefinition")
    assert crds == [
        "sandboxclaims.extensions.agents.x-k8s.io",
        "sandboxes.agents.x-k8s.io",
        "sandboxtemplates.extensions.agents.x-k8s.io",
        "sandboxwarmpools.extensions.agents.x-k8s.io",
    ]
    identities = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests]
    assert len(identities) == len(set(identities)), "duplicate objects in the install"


def test_v0_5_6_ships_the_conversion_webhook_service(minimal_config, loader: UpstreamLoader) -> None:
    names = {
        version: {m["metadata"]["name"] for m in build_agent_sandbox(
            _spec(minimal_config, version=version).agent_sandbox, True, loader
        ) if m["kind"] == "Service"}
        for version in ("v0.4.6", "v0.5.6")
    }
    assert "agent-sandbox-webhook-service" in names["v0.5.6"]
    assert "agent-sandbox-webhook-service" not in names["v0.4.6"]


def test_controller_is_hardened_and_sized(minimal_config, loader: UpstreamLoader) -> None:
    spec = _spec(minimal_config, controller={
        "replicas": 3, "registryMirror": "registry.corp.example",
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    })
    manifests = build_agent_sandbox(spec.agent_sandbox, spec.cluster.wait_for_workloads, loader)
    deployment = _one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "registry.corp.example/agent-sandbox/agent-sandbox-controller:v0.5.6"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    namespace = _one(manifests, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_controller_skips_await_only_when_told(minimal_config, loader: UpstreamLoader) -> None:
    def annotations(config: dict) -> dict:
        spec = spec_from_config(config)
        return _one(build_agent_sandbox(spec.agent_sandbox, spec.cluster.wait_for_workloads, loader), "Deployment")["metadata"].get(
            "annotations", {})

    assert "pulumi.com/skipAwait" not in annotations(minimal_config)
    no_wait = {**minimal_config, "cluster": {**minimal_config["cluster"], "waitForWorkloads": False}}
    assert annotations(no_wait)["pulumi.com/skipAwait"] == "true"


def test_loader_cache_is_not_mutated_between_builds(minimal_config, loader: UpstreamLoader) -> None:
    first = _spec(minimal_config, controller={"replicas": 4})
    build_agent_sandbox(first.agent_sandbox, first.cluster.wait_for_workloads, loader)
    second = _spec(minimal_config)
    deployment = _one(build_agent_sandbox(second.agent_sandbox, second.cluster.wait_for_workloads, loader), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert [v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]] == ["config-volume", "tmp"]


@pytest.mark.parametrize(("release", "api_version"), [("v0.4.6", "v1alpha1"), ("v0.5.6", "v1beta1")])
def test_custom_resources_use_the_api_version_of_the_release(minimal_config, release: str, api_version: str) -> None:
    spec = _spec(minimal_config, version=release)
    template = build_sandbox_template(spec.templates[0], spec.agent_sandbox.api_version)
    pool = build_warm_pool(spec.warm_pools[0], spec.templates[0], spec.agent_sandbox.api_version)
    assert template["apiVersion"] == f"extensions.agents.x-k8s.io/{api_version}"
    assert pool["apiVersion"] == f"extensions.agents.x-k8s.io/{api_version}"


def test_template_pod_is_secure_by_default(minimal_config) -> None:
    template = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")
    pod = template["spec"]["podTemplate"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert "runtimeClassName" not in pod
    assert "readinessProbe" not in container
    assert template["spec"]["envVarsInjectionPolicy"] == "Disallowed"
    assert template["spec"]["networkPolicyManagement"] == "Managed"


def test_run_as_user_null_leaves_the_user_to_the_image_but_keeps_run_as_non_root(minimal_config) -> None:
    minimal_config["templates"][0]["runAsUser"] = None
    pod = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")["spec"]["podTemplate"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in pod["containers"][0]["securityContext"]


def test_readiness_path_is_probed_on_the_agent_port(minimal_config) -> None:
    minimal_config["templates"][0].update(readinessPath="/healthz", port=9000)
    container = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")[
        "spec"]["podTemplate"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "agent", "containerPort": 9000, "protocol": "TCP"}]
    assert container["readinessProbe"] == {"httpGet": {"path": "/healthz", "port": "agent"}, "periodSeconds": 1,
                                           "timeoutSeconds": 1, "failureThreshold": 3}


@pytest.mark.parametrize("path", ["healthz", "/a b", "/x?y", ""])
def test_readiness_path_must_be_an_absolute_path(minimal_config, path: str) -> None:
    minimal_config["templates"][0]["readinessPath"] = path
    with pytest.raises(ConfigError, match=r"templates\[0\]\.readinessPath = "):
        spec_from_config(minimal_config)


def test_template_opt_outs_and_runtime_class(minimal_config) -> None:
    minimal_config["templates"][0].update(
        readOnlyRootFilesystem=False, runtimeClassName="gvisor",
        env=[{"name": "MODE", "value": "x"}, {"name": "TOKEN", "secretKeyRef": {"name": "api", "key": "token"}}],
    )
    pod = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")["spec"]["podTemplate"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False
    assert pod["containers"][0]["env"] == [
        {"name": "MODE", "value": "x"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]


def test_managed_network_policy_is_an_allowlist_without_metadata(minimal_config) -> None:
    minimal_config["templates"][0]["network"] = {
        "ingress": {"fromNamespaces": ["gateway"]},
        "egress": {"cidrs": ["0.0.0.0/0", "::/0", "10.20.0.0/16"], "ports": [{"port": 443}, {"port": 5432}],
                   "domains": ["https://pypi.org/simple"]},
    }
    template = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")
    policy = template["spec"]["networkPolicy"]
    assert policy["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}],
        "ports": [{"port": 8888, "protocol": "TCP"}],
    }]
    dns, allowlist = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert allowlist["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128", "fe80::/10"]}},
        {"ipBlock": {"cidr": "10.20.0.0/16"}},
    ]
    assert [p["port"] for p in allowlist["ports"]] == [443, 5432]
    assert template["metadata"]["annotations"]["sandbox-infra.dev/allowed-domains"] == "pypi.org"


def test_default_ingress_is_the_tenant_namespace_and_no_egress_but_dns(minimal_config) -> None:
    policy = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")["spec"]["networkPolicy"]
    assert policy["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}]
    assert len(policy["egress"]) == 1 and policy["egress"][0]["ports"][0]["port"] == 53


def test_unmanaged_network_records_the_enforcer(minimal_config) -> None:
    minimal_config["templates"][0]["network"] = {
        "management": "Unmanaged", "externalEnforcer": "cilium", "egress": {"domains": ["api.github.com:443"]},
    }
    template = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")
    assert template["spec"]["networkPolicyManagement"] == "Unmanaged"
    assert "networkPolicy" not in template["spec"]
    assert template["metadata"]["annotations"]["sandbox-infra.dev/egress-enforcer"] == "cilium"
    assert template["metadata"]["annotations"]["sandbox-infra.dev/allowed-domains"] == "api.github.com"


def _cilium(minimal_config: dict[str, Any], **network: Any) -> dict[str, Any] | None:
    minimal_config["templates"][0]["network"] = {"management": "Unmanaged", "externalEnforcer": "cilium", **network}
    return build_cilium_network_policy(spec_from_config(minimal_config).templates[0])


def test_cilium_enforced_template_gets_its_allowlist_as_a_cilium_policy(minimal_config) -> None:
    egress = {"domains": ["https://pypi.org", "*.pythonhosted.org"], "cidrs": ["0.0.0.0/0"],
              "ports": [{"port": 443}, {"port": 8443}]}
    policy = _cilium(minimal_config, egress=egress, ingress={"fromNamespaces": ["gateway"]})
    assert policy is not None and (policy["apiVersion"], policy["kind"]) == ("cilium.io/v2", "CiliumNetworkPolicy")
    assert policy["metadata"]["namespace"] == "team-a"
    template = build_sandbox_template(spec_from_config(minimal_config).templates[0], "v1beta1")
    selector = policy["spec"]["endpointSelector"]["matchLabels"]
    assert selector.items() <= template["spec"]["podTemplate"]["metadata"]["labels"].items(), "must select its pods"
    dns, names, cidrs = policy["spec"]["egress"]
    assert dns["toEndpoints"][0]["matchLabels"]["k8s:k8s-app"] == "kube-dns"
    assert dns["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert names["toFQDNs"] == [{"matchName": "pypi.org"}, {"matchPattern": "*.pythonhosted.org"}]
    assert names["toPorts"] == cidrs["toPorts"] == [{"ports": [{"port": "443", "protocol": "TCP"},
                                                              {"port": "8443", "protocol": "TCP"}]}]
    assert cidrs["toCIDRSet"] == [{"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}]
    assert policy["spec"]["ingress"][0]["fromEndpoints"] == [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "gateway"}}]


def test_cilium_policy_without_allowlist_denies_all_egress(minimal_config) -> None:
    policy = _cilium(minimal_config, allowDns=False)
    assert policy is not None and "egress" not in policy["spec"]
    assert policy["spec"]["enableDefaultDeny"] == {"ingress": True, "egress": True}


@pytest.mark.parametrize("network", [{"management": "Managed"}, {"management": "Unmanaged", "externalEnforcer": "calico"}])
def test_no_cilium_policy_without_cilium(minimal_config, network: dict[str, Any]) -> None:
    minimal_config["templates"][0]["network"] = network
    assert build_cilium_network_policy(spec_from_config(minimal_config).templates[0]) is None


def awaits(manifest: dict[str, Any]) -> dict[str, str]:
    """The pulumi-kubernetes await annotations of an object."""
    return {k: v for k, v in manifest["metadata"].get("annotations", {}).items()
            if k in ("pulumi.com/skipAwait", "pulumi.com/waitFor")}


# Kinds whose pulumi-kubernetes await needs pods to run (pkg/await/awaiters.go): a Service
# waits for endpoints, a PersistentVolumeClaim to be bound, the rest for ready pods.
WORKLOAD_AWAITS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicationController", "Service",
                   "Ingress", "PersistentVolumeClaim"}


@pytest.mark.parametrize("stack", available_stacks())
def test_wait_for_workloads_false_turns_off_every_await_on_pods(stack: str, loader: UpstreamLoader) -> None:
    config = stack_config(stack)
    config["cluster"]["waitForWorkloads"] = False
    manifests = render_stack(spec_from_config(config), loader)
    waiting = [(m["kind"], m["metadata"]["name"]) for m in manifests
               if "pulumi.com/waitFor" in awaits(m)
               or (m["kind"] in WORKLOAD_AWAITS and awaits(m) != {"pulumi.com/skipAwait": "true"})]
    assert not waiting, f"these would block `pulumi up` on a cluster where no pod runs: {waiting}"
    assert {"Service", "Deployment"} <= {m["kind"] for m in manifests}


@pytest.mark.parametrize("stack", available_stacks())
def test_the_stack_owns_every_field_it_declares(stack: str, loader: UpstreamLoader) -> None:
    # Drift is put back by the next `pulumi up` instead of failing on a field conflict.
    for manifest in render_stack(spec_from_config(stack_config(stack)), loader):
        assert manifest["metadata"]["annotations"]["pulumi.com/patchForce"] == "true", manifest["metadata"]["name"]


def test_the_kubernetes_provider_never_waits_for_a_warm_pool(minimal_config) -> None:
    """`waitForReady` is PoolReadiness's (bounded, failing fast: tests/test_readiness.py); the
    provider's own await would wait its 10 minutes out on a pool that cannot start."""
    spec = spec_from_config(minimal_config)
    pool, template = spec.warm_pools[0], spec.templates[0]
    waiting = pool.model_copy(update={"wait_for_ready": True, "update_strategy": "Recreate"})
    for each in (pool, waiting):
        assert awaits(build_warm_pool(each, template, "v1beta1")) == {"pulumi.com/skipAwait": "true"}
    manifest = build_warm_pool(waiting, template, "v1beta1")
    assert manifest["metadata"]["namespace"] == "team-a"
    assert manifest["spec"] == {"replicas": 2, "sandboxTemplateRef": {"name": "python"},
                                "updateStrategy": {"type": "Recreate"}}


def test_tenant_is_restricted_limited_and_least_privilege(minimal_config) -> None:
    minimal_config["tenants"][0]["gatewayServiceAccounts"].append({"name": "gw", "namespace": "gateway"})
    manifests = build_tenant(spec_from_config(minimal_config).tenants[0])
    namespace = _one(manifests, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert _one(manifests, "ResourceQuota")["spec"]["hard"]["pods"] == "50"
    assert _one(manifests, "LimitRange")["spec"]["limits"][0]["type"] == "Container"
    deny = _one(manifests, "NetworkPolicy")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    role = _one(manifests, "Role")
    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {r for r, v in granted if v in writes} == {"sandboxclaims"}
    assert {v for r, v in granted if r == "sandboxclaims"} == {"create", "get", "list", "watch", "delete"}
    assert {r for r, _ in granted} == {"sandboxclaims", "sandboxes", "sandboxtemplates", "sandboxwarmpools"}
    binding = _one(manifests, "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gateway", "namespace": "team-a"},
        {"kind": "ServiceAccount", "name": "gw", "namespace": "gateway"},
    ]


def test_tenant_without_gateways_binds_nobody(minimal_config) -> None:
    minimal_config["tenants"][0]["gatewayServiceAccounts"] = []
    assert not [m for m in build_tenant(spec_from_config(minimal_config).tenants[0]) if m["kind"] == "RoleBinding"]


def test_render_orders_namespaces_and_crds_first(minimal_config, loader: UpstreamLoader) -> None:
    kinds = [m["kind"] for m in render_stack(spec_from_config(minimal_config), loader)]
    assert kinds[:2] == ["Namespace", "Namespace"]
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment") < kinds.index("SandboxTemplate")
    assert kinds.index("SandboxTemplate") < kinds.index("SandboxWarmPool")
