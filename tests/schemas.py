"""Validate rendered objects against the real upstream schemas.

Every object goes through the project's own validator (components/validation.py: built-in
kinds against the Kubernetes v1.36 OpenAPI of `kubernetes-validate`, custom resources
against the pinned CRDs, KubeVirt's included), the one `check` runs before its rules.
KubeVirt kinds are also checked against KubeVirt's upstream OpenAPI document
(`api/openapi-spec/swagger.json` of the pinned tag), a second, independent description
of the same types; made strict first (unknown fields are errors).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from components.upstream import UpstreamLoader, upstream_dir
from components.validation import SchemaValidator, strict

KUBEVIRT_DIR = ("kubevirt", "v1.9.0")

# KubeVirt kinds we render -> their definition in the upstream OpenAPI document.
KUBEVIRT_DEFINITIONS = {
    ("kubevirt.io/v1", "KubeVirt"): "v1.KubeVirt",
    ("kubevirt.io/v1", "VirtualMachine"): "v1.VirtualMachine",
    ("pool.kubevirt.io/v1beta1", "VirtualMachinePool"): "v1beta1.VirtualMachinePool",
}


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


@cache
def _validator(release: str) -> SchemaValidator:
    return SchemaValidator(UpstreamLoader(), release)


def validation_errors(manifest: dict[str, Any], release: str) -> list[str]:
    """Every schema violation of one rendered object (empty when valid)."""
    errors = [str(problem) for problem in _validator(release).problems(manifest)]
    key = (manifest["apiVersion"], manifest["kind"])
    if key in KUBEVIRT_DEFINITIONS:
        errors += errors_of(kubevirt_validator(KUBEVIRT_DEFINITIONS[key]), manifest)
    return errors
