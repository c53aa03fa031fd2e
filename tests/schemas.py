"""Validate rendered objects against the real upstream schemas.

Custom resources: the CRD `openAPIV3Schema` of the served version in the pinned
agent-sandbox release, of the CiliumNetworkPolicy CRD mirrored from Cilium and of the
prometheus-operator CRDs (ServiceMonitor, PrometheusRule); KubeVirt kinds: the definitions
of KubeVirt's upstream OpenAPI document (`api/openapi-spec/swagger.json` of the pinned tag), and for the
KubeVirt CR also its `kubevirts.kubevirt.io` CRD schema. The API server prunes
unknown fields silently, which would hide a misspelled key, so every schema is
made strict first (unknown fields are errors, as with `kubectl apply
--validate=strict`). Built-in kinds: the Kubernetes OpenAPI schemas that
`kubernetes-validate` ships, in strict mode.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from components.upstream import upstream_dir

KUBERNETES_VERSION = "1.34"
KUBEVIRT_DIR = ("kubevirt", "v1.9.0")

# KubeVirt kinds we render -> their definition in the upstream OpenAPI document.
KUBEVIRT_DEFINITIONS = {
    ("kubevirt.io/v1", "KubeVirt"): "v1.KubeVirt",
    ("kubevirt.io/v1", "VirtualMachine"): "v1.VirtualMachine",
    ("pool.kubevirt.io/v1beta1", "VirtualMachinePool"): "v1beta1.VirtualMachinePool",
}


# Branches of these only pick which properties are required (Cilium's `oneOf: [{properties:
# {cidr: {}}, required: [cidr]}, ...]`): the object's own schema closes it, a closed branch
# would refuse its other properties.
_COMBINATORS = ("oneOf", "anyOf", "allOf")


def strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {
        key: [_open_branch(b) for b in value] if key in _COMBINATORS and isinstance(value, list) else strict(value)
        for key, value in schema.items()
    }
    if result.get("format") == "int-or-string":  # OpenAPI v2 writes IntOrString as a string
        del result["type"]
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def _open_branch(branch: Any) -> Any:
    if not isinstance(branch, dict) or "type" in branch:
        return strict(branch)
    return {key: strict(value) if key != "properties" else value for key, value in branch.items()}


def _crd_validators(crd: dict[str, Any]) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> strict validator for every served version of one CRD."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    return {
        (f"{group}/{version['name']}", kind): jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))
        for version in crd["spec"]["versions"] if version["served"]
    }


@cache
def cilium_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """The CiliumNetworkPolicy CRD mirrored from cilium/cilium (cilium/ciliumnetworkpolicies.yaml)."""
    path = Path(upstream_dir(), "cilium", "ciliumnetworkpolicies.yaml")
    return _crd_validators(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader))


@cache
def crd_validators(release: str) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator for every version served by the release's CRDs."""
    validators = {}
    for path in sorted(Path(upstream_dir(), "agent-sandbox", release, "k8s", "crds").glob("*.yaml")):
        validators.update(_crd_validators(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)))
    return validators


PROMETHEUS_OPERATOR_DIR = ("prometheus-operator", "v0.93.0")


@cache
def prometheus_operator_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """ServiceMonitor and PrometheusRule: the CRDs of the pinned prometheus-operator release."""
    validators = {}
    for path in sorted(Path(upstream_dir(), *PROMETHEUS_OPERATOR_DIR).glob("monitoring.coreos.com_*.yaml")):
        validators.update(_crd_validators(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)))
    return validators


def kubevirt_path(*parts: str) -> Path:
    return Path(upstream_dir(), *KUBEVIRT_DIR, *parts)


@cache
def kubevirt_definitions() -> dict[str, Any]:
    swagger = json.loads(kubevirt_path("api", "openapi-spec", "swagger.json").read_text())
    return strict(swagger["definitions"])


@cache
def kubevirt_validator(definition: str) -> jsonschema.protocols.Validator:
    """A validator for one definition of KubeVirt's OpenAPI v2 document (JSON Schema draft 4)."""
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": kubevirt_definitions()})


@cache
def kubevirt_crd_validator() -> jsonschema.protocols.Validator:
    """The v1 schema of the `kubevirts.kubevirt.io` CRD (manifests/generated/kv-resource.yaml)."""
    crd = yaml.load(kubevirt_path("manifests", "generated", "kv-resource.yaml").read_bytes(), Loader=yaml.CSafeLoader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # the API server owns metadata's schema
    return jsonschema.Draft7Validator(strict(schema))


def errors_of(validator: jsonschema.protocols.Validator, manifest: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def validation_errors(manifest: dict[str, Any], release: str) -> list[str]:
    """Every schema violation of one rendered object (empty when valid)."""
    key = (manifest["apiVersion"], manifest["kind"])
    if key in KUBEVIRT_DEFINITIONS:
        errors = errors_of(kubevirt_validator(KUBEVIRT_DEFINITIONS[key]), manifest)
        if manifest["kind"] == "KubeVirt":
            errors += errors_of(kubevirt_crd_validator(), manifest)
        return errors
    validator = (crd_validators(release).get(key) or cilium_validators().get(key)
                 or prometheus_operator_validators().get(key))
    if validator is not None:
        return errors_of(validator, manifest)
    if "." in manifest["apiVersion"].split("/")[0] and not manifest["apiVersion"].endswith("k8s.io/v1"):
        return [f"no schema known for {key}"]
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []
