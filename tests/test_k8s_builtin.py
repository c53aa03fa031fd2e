"""Built-in kinds are registered without importing pulumi-kubernetes' typed classes
(components/k8s.py, BuiltIn): the engine must get exactly what the typed class would send.

Each registration request (type token, name, parent, inputs with their secrets, dependencies,
provider, plugin version, aliases, secret outputs, every other option) is compared field by
field with the one the typed class makes from the same manifest and options: for one object of
every kind in BUILT_IN with every field the kind takes, and for every object of every stack
shipped stack. Only the source position differs (the typed class was
called on another line of components/k8s.py), and it is checked to be in components/k8s.py.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pulumi
import pytest
from google.protobuf.json_format import MessageToDict

import components.k8s as k8s_module
from components.errors import ConfigError
from components.k8s import BUILT_IN, kubernetes_resource, place, type_token
from components.upstream import UpstreamLoader

from .pulumi_harness import RecordingMonitor, run_under_mocks
from .test_urns import registrations


def typed_class(api_version: str, kind: str) -> type:
    """pulumi_kubernetes.<group's first label, or core>.<version>.<Kind>"""
    group, _, version = api_version.rpartition("/")
    return getattr(importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0] or 'core'}.{version}"), kind)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


def typed(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """What components/k8s.py did before BuiltIn: the typed class, with the manifest's keys as its arguments."""
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "status")}
    return typed_class(manifest["apiVersion"], manifest["kind"])(name, opts=opts, **{_snake(k): v for k, v in body.items()})


class FullRequests(RecordingMonitor):
    """Keeps every registration request whole, by URN."""

    def __init__(self) -> None:
        super().__init__(record_inputs=False)
        self.requests: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":  # registered by the first run of a process only
            kept = MessageToDict(request)
            # The SDK collects dependencies in sets: their order differs from run to run.
            kept["dependencies"] = sorted(kept.get("dependencies", []))
            for deps in kept.get("propertyDependencies", {}).values():
                deps["urns"] = sorted(deps.get("urns", []))
            self.requests[response.urn] = kept
        return response


def requests(program, stack: str, monkeypatch: pytest.MonkeyPatch, reference: bool) -> dict[str, dict[str, Any]]:
    with monkeypatch.context() as patch:
        if reference:
            patch.setattr(k8s_module, "BuiltIn", typed)
        monitor = FullRequests()
        run_under_mocks(program, stack=stack, monitor=monitor)
    return monitor.requests


def assert_identical(built_in: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]]) -> int:
    """Every request equal but for its source position; returns how many are of built-in kinds."""
    assert sorted(built_in) == sorted(reference)
    compared = 0
    for urn, request in built_in.items():
        expected = reference[urn]
        # Where the resource was created: the typed class was called in components/k8s.py too
        # (the reference here calls it from this file).
        position = request.pop("sourcePosition", {})
        expected.pop("sourcePosition", None)
        request.pop("stackTrace", None), expected.pop("stackTrace", None)
        assert request == expected, urn
        if request["type"] in TOKENS:
            compared += 1
            assert position["uri"].endswith("/components/k8s.py"), (urn, position)
    return compared


TOKENS = {type_token(api_version, kind) for api_version, kind in BUILT_IN}
SAMPLES: dict[str, Any] = {
    "immutable": True, "globalDefault": False, "automountServiceAccountToken": False, "value": 1000,
    "description": "a description", "preemptionPolicy": "Never", "type": "Opaque",
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
    "imagePullSecrets": [{"name": "pull"}], "secrets": [{"name": "token"}],
    "data": {"key": "dmFsdWU="}, "stringData": {"other": "value"}, "binaryData": {"blob": "AAE="},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role"},
    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"aggregate": "true"}}]},
}
# The typed classes check the shape of what comes back (mocks echo the inputs), so each spec is a real one.
SPECS: dict[str, Any] = {
    "Namespace": {"finalizers": ["kubernetes"]},
    "Service": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]},
    "ResourceQuota": {"hard": {"pods": "10"}},
    "LimitRange": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]},
    "Deployment": {"selector": {"matchLabels": {"app": "x"}}, "template": {
        "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 1}]}]}}},
    "HorizontalPodAutoscaler": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 3},
    "NetworkPolicy": {"podSelector": {}, "policyTypes": ["Ingress"]},
    "CustomResourceDefinition": {"group": "example.com", "names": {"plural": "things", "kind": "Thing"}, "scope": "Namespaced",
                                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                                     "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                     "properties": {"spec": {"type": "object", "$ref": "#/x"}}}}}]},
    "ValidatingAdmissionPolicy": {"matchConstraints": {"resourceRules": [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
        "validations": [{"expression": "true"}]},
    "ValidatingAdmissionPolicyBinding": {"policyName": "p", "validationActions": ["Deny"]},
}


def every_kind() -> list[dict[str, Any]]:
    """One object of each built-in kind, with every field its typed class takes."""
    manifests = []
    for (api_version, kind), known in sorted(BUILT_IN.items()):
        manifest: dict[str, Any] = {"apiVersion": api_version, "kind": kind,
                                    "metadata": {"name": kind.lower(), "namespace": "ns", "labels": {"a": "b"},
                                                 "ownerReferences": [], "annotations": {"pulumi.com/patchForce": "true"}}}
        for field in sorted(known.fields - {"metadata"}):
            manifest[field] = SPECS[kind] if field == "spec" else SAMPLES[field]
        manifests.append(manifest)
    return manifests


def test_the_table_lists_each_typed_class_s_fields() -> None:
    for (api_version, kind), known in BUILT_IN.items():
        cls = typed_class(api_version, kind)
        taken = set(inspect.signature(cls._internal_init).parameters) - {"__self__", "resource_name", "opts", "__props__",
                                                                       "api_version", "kind"}
        assert known.fields == {_camel(name) for name in taken}, kind


def test_every_kind_registers_as_its_typed_class(monkeypatch: pytest.MonkeyPatch) -> None:
    def program() -> None:
        parent = pulumi.ComponentResource("sandbox-infra:test:Parent", "parent")
        before = pulumi.ComponentResource("sandbox-infra:test:Before", "before")
        place(parent, every_kind(), [before], {0: pulumi.ResourceOptions(protect=True, ignore_changes=["spec"])})

    built_in = requests(program, "test", monkeypatch, reference=False)
    assert assert_identical(built_in, requests(program, "test", monkeypatch, reference=True)) == len(BUILT_IN)
    secret = next(r for r in built_in.values() if r["type"] == "kubernetes:core/v1:Secret")
    assert secret["additionalSecretOutputs"] == ["data", "stringData"] * 2
    assert secret["object"]["data"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    deployment = next(r for r in built_in.values() if r["type"] == "kubernetes:apps/v1:Deployment")
    assert len(deployment["aliases"]) == 3 and deployment["version"]


# The shipped stacks (the other variants of test_urns add custom resources and lookups only).
@pytest.mark.parametrize("variant", ["dev", "staging", "prod", "prod-us"])
def test_every_stack_registers_as_with_the_typed_classes(
    variant: str, loader: UpstreamLoader, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[bool, dict[str, dict[str, Any]]] = {}
    for reference in (False, True):
        monitor = FullRequests()
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(k8s_module, "BuiltIn", typed)
            patch.setattr("tests.test_urns.run_under_mocks",
                          lambda program, stack, resource_mocks, m=monitor: run_under_mocks(
                              program, stack=stack, monitor=_with_mocks(m, resource_mocks)))
            registrations(variant, loader)
        seen[reference] = monitor.requests
    assert assert_identical(seen[False], seen[True]) > 10


def _with_mocks(monitor: FullRequests, resource_mocks: pulumi.runtime.Mocks) -> FullRequests:
    monitor.mocks = resource_mocks
    return monitor


def test_a_key_the_kind_does_not_take_is_one_clear_error() -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "ns"},
                "spec": {"oops": True}}
    with pytest.raises(ConfigError, match=r"ConfigMap ns/settings: v1 ConfigMap takes \['binaryData', 'data', "
                                          r"'immutable', 'metadata'\], got \['spec'\]"):
        run_under_mocks(lambda: kubernetes_resource(manifest, pulumi.ResourceOptions()))
