"""Validate rendered objects against the real upstream schemas.

Custom resources: the CRD `openAPIV3Schema` of the served version in the pinned
agent-sandbox release. The API server prunes unknown fields silently, which
would hide a misspelled key, so the schema is made strict first (unknown fields
are errors, as with `kubectl apply --validate=strict`). Built-in kinds: the
Kubernetes OpenAPI schemas that `kubernetes-validate` ships, in strict mode.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from components.upstream import upstream_dir

KUBERNETES_VERSION = "1.34"


def strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@cache
def crd_validators(release: str) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator for every version served by the release's CRDs."""
    validators = {}
    for path in sorted(Path(upstream_dir(), "agent-sandbox", release, "k8s", "crds").glob("*.yaml")):
        crd = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


def validation_errors(manifest: dict[str, Any], release: str) -> list[str]:
    """Every schema violation of one rendered object (empty when valid)."""
    key = (manifest["apiVersion"], manifest["kind"])
    validator = crd_validators(release).get(key)
    if validator is not None:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    if "." in manifest["apiVersion"].split("/")[0] and not manifest["apiVersion"].endswith("k8s.io/v1"):
        return [f"no schema known for {key}"]
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []
