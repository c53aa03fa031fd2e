"""Validate Kubernetes objects against their real schemas, as an API server would, before
any policy rule judges them (`check`, and a test over every rendered stack).

- Built-in kinds: the OpenAPI of the pinned Kubernetes version (v1.36, the kube-apiserver
  of tools/kubernetes/go.mod), as JSON Schema shipped by `kubernetes-validate`, strict
  (an unknown field is an error, as `kubectl apply` does since v1.27). The OpenAPI cannot
  say everything the API server's own validation enforces; the few checks every API
  server runs on every object, and that a rule would otherwise read wrongly, are added
  here (see `_api_server_checks`): a name, at least one container with a name and an
  image in every pod spec, quantities in Kubernetes' quantity grammar.
- Custom resources: the `openAPIV3Schema` of the pinned upstream CRDs (agent-sandbox of
  the stack's release, KubeVirt v1.9.0's 19 operator CRDs and the KubeVirt CR's CRD,
  CiliumNetworkPolicy, prometheus-operator's PrometheusRule and ServiceMonitor), read
  through the upstream loader (digest-verified), made strict the same way. As the API
  server does, null values are pruned before a custom resource is validated.
- A kind with no schema is an error, as in kubeconform; `ignore_missing_schemas` (the
  CLI's `--ignore-missing-schemas`) skips such objects instead.

Schemas are loaded once and compiled validators cached per process: validating every
object of a stack costs milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from .upstream import PinnedFile, UpstreamLoader, agent_sandbox_file

KUBERNETES_VERSION = "1.36"  # tools/kubernetes/go.mod: k8s.io/kubernetes v1.36.3
KUBEVIRT_VERSION = "v1.9.0"

_KUBEVIRT_RAW = "https://raw.githubusercontent.com/kubevirt/kubevirt/{tag}/{path}"
# The 19 CRDs virt-operator installs, rebuilt from tag v1.9.0 (it creates them in Go; upstream
# publishes no such file), so only a mirror has it: see the upstream mirror's README.
KUBEVIRT_OPERATOR_CRDS = PinnedFile(f"kubevirt/{KUBEVIRT_VERSION}/crds/virt-operator-crds.yaml", "",
                                    "71417b7532a59c0ad598df3e0d46d22366e24819b6f81bc065ccf7241fddf9d8")
# The KubeVirt CR's CRD (kubevirts.kubevirt.io), byte-identical to the tag.
KUBEVIRT_CR_CRD = PinnedFile(f"kubevirt/{KUBEVIRT_VERSION}/manifests/generated/kv-resource.yaml",
                             _KUBEVIRT_RAW.format(tag=KUBEVIRT_VERSION, path="manifests/generated/kv-resource.yaml"),
                             "063d36582e4c3b8328edee61975eedee2b8f0b1d86ea3fecf3d4587efb60fcb1")
# The CRD files custom resources are validated against (agent-sandbox's follow the stack's release).
SCHEMA_FILES: tuple[PinnedFile, ...] = (
    KUBEVIRT_OPERATOR_CRDS,
    KUBEVIRT_CR_CRD,
    PinnedFile("cilium/ciliumnetworkpolicies.yaml",
               "https://raw.githubusercontent.com/cilium/cilium/02904c9bb25567e06b55639622528a8b8c829f25/"
               "pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml",
               "518639f120fc20e3f28d71ad61f8dbf242ac4ab0c162836883a36b7b07ab6899"),
    *(PinnedFile(f"prometheus-operator/v0.93.0/{name}",
                 "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.93.0/"
                 f"example/prometheus-operator-crd/{name}", digest)
      for name, digest in (
          ("monitoring.coreos.com_prometheusrules.yaml",
           "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d"),
          ("monitoring.coreos.com_servicemonitors.yaml",
           "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32"),
      )),
)
# The API groups each file defines (a file is parsed only when an object of its group is seen).
_GROUPS: dict[PinnedFile, tuple[str, ...]] = dict(zip(SCHEMA_FILES, (("kubevirt.io",), ("kubevirt.io",), ("cilium.io",),
                                                                   ("monitoring.coreos.com",),
                                                                   ("monitoring.coreos.com",)), strict=True))
AGENT_SANDBOX_CRDS = (
    "crds/agents.x-k8s.io_sandboxes.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxclaims.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxtemplates.yaml",
    "crds/extensions.agents.x-k8s.io_sandboxwarmpools.yaml",
)

# Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity), as controller-gen
# writes it into CRDs; the built-in OpenAPI only says "string or number".
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_OBJECT_META_REF = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Built-in kinds -> where their pod spec sits (the API server requires containers there).
_POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass(frozen=True)
class SchemaProblem:
    path: str
    """Where in the object, as `spec.containers[0].image` ('' for the object itself)."""
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '(object)'}: {self.reason}"


class SchemaValidator:
    """Validates objects for one stack's versions; cheap to create, schemas are cached."""

    def __init__(self, loader: UpstreamLoader, agent_sandbox_version: str, ignore_missing_schemas: bool = False) -> None:
        self.loader = loader
        self.ignore_missing_schemas = ignore_missing_schemas
        self._agent_sandbox = tuple(agent_sandbox_file(agent_sandbox_version, path) for path in AGENT_SANDBOX_CRDS)

    def _custom_validator(self, api_version: str, kind: str) -> Any:
        """The CRD validator of a custom resource, None when no pinned CRD defines it. Only the
        files of the object's API group are read (KubeVirt's CRDs alone are 58,000 lines)."""
        group = api_version.split("/")[0]
        if group.endswith("agents.x-k8s.io"):
            files: tuple[PinnedFile, ...] = self._agent_sandbox
        else:
            files = tuple(f for f in SCHEMA_FILES if any(group == g or group.endswith("." + g) for g in _GROUPS[f]))
        for pinned in files:
            validator = _crd_validator(pinned, self.loader, api_version, kind)
            if validator is not None:
                return validator
        return None

    def problems(self, manifest: dict[str, Any]) -> list[SchemaProblem]:
        """Every reason an API server would refuse `manifest` (empty: valid). `manifest` must
        have string apiVersion and kind (the input front door guarantees it)."""
        key = (manifest["apiVersion"], manifest["kind"])
        secret = manifest["kind"] == "Secret"
        custom = self._custom_validator(*key)
        if custom is not None:
            pruned = _prune_nulls(manifest)
            problems = _problems(custom.iter_errors(pruned), secret)
            metadata = pruned.get("metadata")
            if isinstance(metadata, dict):
                problems += _problems(_object_meta_validator().iter_errors(metadata), secret, ("metadata",))
            return problems + _named(manifest)
        builtin = _builtin_validator(*key)
        if builtin is None:
            if self.ignore_missing_schemas:
                return []
            return [SchemaProblem("", f"no schema for kind {key[1]!r} of apiVersion {key[0]!r}: not a Kubernetes "
                                      f"v{KUBERNETES_VERSION} kind nor a custom resource of a pinned CRD "
                                      "(--ignore-missing-schemas skips such objects)")]
        return _problems(builtin.iter_errors(manifest), secret) + _named(manifest) + _pod_spec_problems(manifest)


# --- custom resources ----------------------------------------------------------------------

# Branches of these only pick which properties are required (Cilium's `oneOf: [{properties:
# {cidr: {}}, required: [cidr]}, ...]`): the object's own schema closes it, a closed branch
# would refuse its other properties.
_COMBINATORS = ("oneOf", "anyOf", "allOf")


def strict(schema: Any) -> Any:
    """A CRD schema where unknown fields are errors (the API server would prune them silently,
    which hides a misspelled key; `kubectl apply` refuses them)."""
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
    if result.get("x-kubernetes-embedded-resource") and "properties" in result:
        # An embedded object always may carry apiVersion, kind and metadata.
        result["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                "metadata": {"type": "object"}, **result["properties"]}
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


_CRD_SCHEMAS: dict[PinnedFile, dict[tuple[str, str], dict[str, Any]]] = {}


def _crd_validator(pinned: PinnedFile, loader: UpstreamLoader, api_version: str, kind: str) -> Any:
    """The strict validator of (apiVersion, kind) if a CRD of the file serves it. Schemas are
    cached per pinned file (its digest fixes its content), compiled validators per kind."""
    if pinned not in _CRD_SCHEMAS:
        schemas = {}
        for crd in loader.read_documents(pinned):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, crd_kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", crd_kind)] = version["schema"]["openAPIV3Schema"]
        _CRD_SCHEMAS[pinned] = schemas
    schema = _CRD_SCHEMAS[pinned].get((api_version, kind))
    return None if schema is None else _compile_crd_schema(pinned, api_version, kind)


@cache
def _compile_crd_schema(pinned: PinnedFile, api_version: str, kind: str) -> Any:

    schema = copy.deepcopy(_CRD_SCHEMAS[pinned][(api_version, kind)])
    # The API server owns metadata's schema (ObjectMeta, validated separately).
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return _crd_validator_class()(strict(schema), format_checker=_formats())


@cache
def _crd_validator_class() -> Any:
    """Draft 7 with the API server's idea of an integer: an int64, or a float with an integral
    value within +-2^53 (kube-openapi's `IsFloat64AJSONInteger`)."""
    import jsonschema

    def integer(_: object, value: object) -> bool:
        if isinstance(value, float):
            return value.is_integer() and abs(value) <= 2**53
        return isinstance(value, int) and not isinstance(value, bool)

    return jsonschema.validators.extend(
        jsonschema.Draft7Validator, type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", integer))


def _prune_nulls(value: Any) -> Any:
    """The custom resource as the API server validates it: null fields pruned (structural
    schemas do, unless nullable), and integers beyond int64 read as floats (its JSON decoder
    keeps integers as int64 and falls back to float64), which `type: integer` refuses."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


# --- built-in kinds ----------------------------------------------------------------------


@cache
def _registry() -> Any:
    """kubernetes-validate's definitions for the pinned version, with the quantity grammar."""
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    definitions = schema_contents(_schema_path("_definitions.json"), KUBERNETES_VERSION)
    definitions["$defs"][_QUANTITY_DEF] = {"type": ["string", "number", "null"], "pattern": QUANTITY_PATTERN}
    return Resource.from_contents(definitions) @ Registry()


def _schema_path(name: str) -> str:
    return f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict/{name}"


@cache
def _builtin_validator(api_version: str, kind: str) -> Any:
    """A compiled validator for a built-in kind, None when Kubernetes has no such kind."""
    import jsonschema
    from kubernetes_validate.utils import schema_contents

    # kubernetes-validate names files `<kind>-<group's first label>-<version>.json`.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    if "/" in api_version and not api_version.split("/")[0].endswith(".k8s.io") and "." in api_version.split("/")[0]:
        return None  # a dotted group that is not Kubernetes' own: a custom resource
    try:
        schema = schema_contents(_schema_path(f"{kind.lower()}-{group_version}.json"), KUBERNETES_VERSION)
    except FileNotFoundError:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(), format_checker=_formats())


# The formats of the built-in OpenAPI that the API server's JSON decoding enforces.
_FORMATS = {"byte": "base64 (RFC 4648, padded)", "int32": "a 32-bit integer", "int64": "a 64-bit integer"}


@cache
def _formats() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())

    @checker.checks("byte", raises=(ValueError, binascii.Error))
    def _base64(value: object) -> bool:
        return not isinstance(value, str) or base64.b64decode(value, validate=True) is not None

    for name, bits in (("int32", 32), ("int64", 64)):
        checker.checks(name)(lambda value, bits=bits: not isinstance(value, int) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1))
    return checker


@cache
def _object_meta_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator({"$ref": _OBJECT_META_REF}, registry=_registry())


def _named(manifest: dict[str, Any]) -> list[SchemaProblem]:
    metadata = manifest.get("metadata")
    if isinstance(metadata, dict) and (metadata.get("name") or metadata.get("generateName")):
        return []
    return [SchemaProblem("metadata.name", "is required (name or generateName)")]


def _pod_spec_problems(manifest: dict[str, Any]) -> list[SchemaProblem]:
    """What the API server's pod validation requires and the OpenAPI does not say: a pod
    spec (null counts as empty) has at least one container, each with a name and an image."""
    path = _POD_SPECS.get(manifest["kind"])
    if path is None or manifest["apiVersion"].split("/")[0] not in ("v1", "apps", "batch"):
        return []
    spec: Any = manifest
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if spec is not None and not isinstance(spec, dict):
        return []  # a type error the schema already reports
    spec = spec or {}
    where = ".".join(path)
    problems = []
    if not spec.get("containers"):
        problems.append(SchemaProblem(f"{where}.containers", "is required: a pod needs at least one container"))
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or []):
            container = container if isinstance(container, dict) else {}
            for key in ("name", "image"):
                if not container.get(key):
                    problems.append(SchemaProblem(f"{where}.{field}[{index}].{key}", "is required"))
    return problems


# --- messages ------------------------------------------------------------------------------


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Fields whose values may hold credentials (cloud-init user data, passwords): never echoed.
_SENSITIVE_FIELDS = frozenset({"userData", "userDataBase64", "networkData", "networkDataBase64", "password",
                               "token", "stringData", "data"})


def _shown(value: Any, secret: bool) -> str:
    """A value as a message may show it: never a Secret's, never a whole mapping or list."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret and isinstance(value, str):
        return "<secret>"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + '..."'


def _problems(errors: Iterable[Any], secret: bool, prefix: tuple[Any, ...] = ()) -> list[SchemaProblem]:
    problems = []
    for error in errors:
        path = (*prefix, *error.absolute_path)
        if error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            for name in sorted(k for k in error.instance if k not in known):
                problems.append(SchemaProblem(_path((*path, name)), "unknown field"))
            continue
        hidden = secret or any(str(part) in _SENSITIVE_FIELDS for part in path)
        problems.append(SchemaProblem(_path(path), _reason(error, hidden)))
    return sorted(set(problems), key=lambda p: (p.path, p.reason))


def _reason(error: Any, secret: bool) -> str:
    shown = _shown(error.instance, secret)
    if isinstance(error.instance, float) and error.instance.is_integer() and abs(error.instance) >= 2**63:
        return (f"{shown} is beyond the 64-bit integer range: the API server reads it as a float, "
                "which is no integer (quote it to make it a string)")
    match error.validator:
        case "required":
            return error.message.replace("is a required property", "is required")
        case "type":
            wanted = error.validator_value if isinstance(error.validator_value, str) else " or ".join(
                t for t in error.validator_value if t != "null")
            return f"must be of type {wanted}, not {shown}"
        case "pattern" if error.validator_value == QUANTITY_PATTERN:
            return f"{shown} is not a quantity (a number with an optional suffix: 500m, 2, 1.5Gi, 1e3)"
        case "pattern":
            return f"{shown} does not match {error.validator_value!r}"
        case "enum":
            return f"{shown} is not one of {', '.join(map(json.dumps, error.validator_value))}"
        case "format" if error.validator_value in _FORMATS:
            return f"{shown} is not {_FORMATS[error.validator_value]}"
        case "oneOf" | "anyOf":
            return f"{shown} is not valid under {'any' if error.validator == 'anyOf' else 'exactly one'} of the allowed forms"
        case _:
            message = error.message
            instance = repr(error.instance)
            return shown + message[len(instance):] if message.startswith(instance) else message
