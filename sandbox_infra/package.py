"""The components as a Pulumi component package, for programs in any Pulumi language.

`provider/PulumiPlugin.yaml` (runtime: python) runs `provider/__main__.py`, which calls
`serve()`: Pulumi's Python component provider (`pulumi.provider.experimental`) with the
components of `COMPONENTS`. A Pulumi YAML (or TypeScript, Go, C#) program then declares
`sandbox-infra:index:Tenant` and the others like resources of any provider
(`pulumi package add`, or `packages:` in its Pulumi.yaml; examples/yaml-warm-pool/).

The package schema is not written by hand: it is inferred from the components' own args
classes, so the Python API, the schema (`provider/schema.json`, checked in and compared by
tests/test_package.py) and docs/components.md cannot drift:

- an args field typed `Union[SomeSpec, dict]` is the pydantic model `SomeSpec` of
  `components.specs`, projected field by field into a schema object type (camelCase keys,
  required = no default, descriptions = the field docstrings in components/specs/*.py);
- a field typed as another component (`install: AgentSandbox`) is a reference to that
  component's resource (YAML: `install: ${install}`);
- `bool`/`str`/`int` fields stay as they are; an args field with a default is optional;
- a component's outputs are its `pulumi.Output` attributes, with their docstrings.

Pulumi's analyzer cannot read the args classes directly (pydantic's `Annotated` and
`Literal` types, unions, and references to components of the same package all fail in the
pinned SDK 3.272.0), hence the projection. `ComponentProvider` is subclassed for what the
SDK's own host gets wrong for us:

- it hands the component plain dicts whose numbers are all floats, and silently drops
  unknown keys: here unknown keys are errors and integral numbers are ints again;
- any exception inside a component's constructor reaches the user as its message plus a
  Python stack: here a `ConfigError` (bad input) becomes Pulumi's `InputPropertiesError`,
  which the CLI prints as one message per bad property, without a stack;
- a component passed to another arrives as a bare URN: here it is the live component this
  provider process constructed earlier in the same deployment.

The SDK's provider server serves components only; `_Servicer` adds the lifecycle of one custom
resource, the warm pool's readiness wait (components/pool_readiness.py: the Python program's
dynamic resource cannot run for a program in another language).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import inspect
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pulumi
from google.protobuf import empty_pb2
from pulumi.errors import InputPropertiesError
from pulumi.provider.experimental.analyzer import Analyzer, PropertyDefinition, PropertyType
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ProviderServicer
from pulumi.runtime import proto, rpc
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import provider_pb2_grpc
from pydantic import BaseModel

from components import pool_readiness
from components.errors import ConfigError
from components.specs.secrets import SecretValue

PACKAGE = "sandbox-infra"
# The schema's version. Bump it with a change of the package's interface.
VERSION = "0.3.0"
ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "provider"
SCHEMA_FILE = PLUGIN_DIR / "schema.json"

# The components served, by name in `components` (their type token: sandbox-infra:index:<name>):
# all nine. VmEnvironment's spec holds secrets (cloud-init, SSH keys): those fields are schema
# secrets that may be another resource's output (`_secret_value`); every other spec field must be
# plain, except the few args fields typed `str | Output[str]` (a template's image).
COMPONENTS = ("AgentSandbox", "Tenant", "SandboxTemplate", "WarmPool", "KubeVirt", "AdmissionPolicies", "VmEnvironment",
              "RuntimeCatalogue", "Monitoring")
# Args fields that only make sense in a Python program: an object, not data (`loader`; `keda` and
# Monitoring's `crds`, lookups of CRDs another install owns: a RequiredCrds, which the package does
# not serve), and the warm pool wait's credentials, which `deploy` hands over from the stack's
# provider settings. From the package the wait reads the cluster the pool's objects go to instead:
# the Kubernetes provider passed to the WarmPool, else the stack's `kubernetes:` config, else the
# ambient kubeconfig (`kubernetes_credentials`).
PYTHON_ONLY = frozenset({"loader", "kubeconfig", "context", "keda", "crds"})


class PackageError(Exception):
    """The projection met a type it has no schema type for: a bug in an args class, not bad input."""


def _component_classes() -> dict[str, type[pulumi.ComponentResource]]:
    module = importlib.import_module("components")
    return {name: getattr(module, name) for name in COMPONENTS}


def _args_class(component: type) -> type:
    hints = typing.get_type_hints(component.__init__)
    args = hints.get("args")
    if not (isinstance(args, type) and dataclasses.is_dataclass(args)):
        raise PackageError(f"{component.__name__}.__init__: `args` must be annotated with a dataclass, got {args!r}")
    return args


def _field_doc(owner: type, name: str) -> str | None:
    """The docstring after `name`'s annotation, in whichever class of `owner`'s MRO declares it."""
    for cls in owner.__mro__:
        if name in inspect.get_annotations(cls):
            return _attribute_docs(cls).get(name)
    return None


@functools.cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of one class, read from its source as Pulumi's analyzer reads them."""
    analyzer = Analyzer(PACKAGE)
    names = inspect.get_annotations(cls)
    return {name: doc for name in names if (doc := analyzer.get_docstring(cls, name))}


def _class_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    return " ".join(doc.split()) if doc else None


def _join(*parts: str | None) -> str | None:
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


class _Projection:
    """Analyzer-readable stand-ins for the args classes, their pydantic models and the components."""

    def __init__(self, components: dict[str, type]) -> None:
        self.components = components
        self.stand_ins: dict[type, type] = {}  # component -> its stand-in (what the analyzer sees)
        self.models: dict[type, type] = {}
        self.docs: dict[tuple[type, str], str] = {}
        self.references: dict[type, str] = {}  # stand-in -> type token, for resource references
        # The spec model of the component being projected -> its fields that component fills in.
        self.filled: dict[type, set[str]] = {}
        self.overridden: dict[type, set[str]] = {}
        # (schema type name, property) of the spec fields that hold a secret (`SecretText`).
        self.secrets: set[tuple[str, str]] = set()
        for name, component in components.items():
            stand_in = type(name, (pulumi.ComponentResource,), {"__module__": __name__, "__doc__": _class_doc(component)})
            self.stand_ins[component] = stand_in
            self.references[stand_in] = f"{PACKAGE}:index:{name}"
        for component, stand_in in self.stand_ins.items():
            self._fill_component(component, stand_in)

    def _fill_component(self, component: type, stand_in: type) -> None:
        args_cls = _args_class(component)
        args = type(f"{component.__name__}Args", (), {"__module__": __name__, "__doc__": _class_doc(args_cls)})
        annotations: dict[str, Any] = {}
        hints = typing.get_type_hints(args_cls)
        # A spec key that names a component passed alongside (a template's `tenant`) may be left
        # out: the component fills it in from the one passed.
        passed = {f.name for f in dataclasses.fields(args_cls) if hints[f.name] in self.stand_ins}
        self.filled = {m: passed for m in typing.get_args(hints.get("spec")) if isinstance(m, type)}
        # A spec key an args field of the same name overrides (a template's `image`) may be left out too.
        self.overridden = {m: {f.name for f in dataclasses.fields(args_cls)
                               if f.name in m.model_fields and f.name not in passed}
                           for m in self.filled if issubclass(m, BaseModel)}
        for field in dataclasses.fields(args_cls):
            if field.name in PYTHON_ONLY:
                continue
            projected, note = self._type(hints[field.name], f"{args_cls.__name__}.{field.name}")
            has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
            annotations[field.name] = projected | None if has_default else projected
            self._doc(args, field.name, _join(_field_doc(args_cls, field.name), note))
        args.__annotations__ = annotations

        def __init__(self: Any, name: str, args: Any, opts: Any = None) -> None:
            raise NotImplementedError("a stand-in for the analyzer; SandboxInfraProvider.construct builds the component")

        __init__.__annotations__ = {"name": str, "args": args, "opts": pulumi.ResourceOptions | None}
        stand_in.__init__ = __init__  # type: ignore[misc]
        outputs: dict[str, Any] = {}
        for name, hint in _own_annotations(component).items():
            if name.startswith("_") or hint is typing.ClassVar or typing.get_origin(hint) is typing.ClassVar:
                continue
            if typing.get_origin(hint) is not pulumi.Output and hint not in (str, int, float, bool):
                raise PackageError(f"{component.__name__}.{name}: a public attribute must be a pulumi.Output "
                                   f"(it is an output of the package), got {hint!r}")
            outputs[name] = hint
            self._doc(stand_in, name, _field_doc(component, name))
        stand_in.__annotations__ = outputs

    def _doc(self, owner: type, name: str, doc: str | None) -> None:
        if doc:
            self.docs[(owner, name)] = " ".join(doc.split())

    def model(self, model: type[BaseModel]) -> type:
        if model in self.models:
            return self.models[model]
        clash = next((m for m in self.models if m.__name__ == model.__name__), None)
        if clash is not None:
            raise PackageError(f"two models named {model.__name__} ({clash.__module__}, {model.__module__}): "
                               "schema type names must be unique")
        stand_in = type(model.__name__, (), {"__module__": __name__, "__doc__": _class_doc(model)})
        self.models[model] = stand_in
        annotations: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            schema_name = info.alias or name
            attribute = _snake(schema_name)
            where = f"{model.__name__}.{schema_name}"
            projected, note = self._type(info.annotation, where)
            if _is_secret(info.annotation):
                self.secrets.add((model.__name__, schema_name))
            overridden = name in self.overridden.get(model, ())
            required = info.is_required() and schema_name not in self.filled.get(model, ()) and not overridden
            annotations[attribute] = projected if required else projected | None
            default = None if info.is_required() or info.default_factory else info.default
            default_note = f"Default: {_shown_default(default)}." if default not in (None, [], {}) and \
                not isinstance(default, BaseModel) else None
            filled_note = (f"May be left out when the component's `{schema_name}` input is given, which overrides it."
                           if overridden else f"Default: the {schema_name} passed alongside (must name it if given)."
                           if info.is_required() and not required else None)
            self._doc(stand_in, attribute, _join(_field_doc(model, name), note, default_note, filled_note))
        stand_in.__annotations__ = annotations
        return stand_in

    def _type(self, hint: Any, where: str) -> tuple[Any, str | None]:
        """The analyzer-readable type for `hint`, and a note for the description (allowed values)."""
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            return self._type(args[0], where)
        if origin is pulumi.Output:  # an args field that takes another resource's output: an input, not plain
            projected, note = self._type(args[0], where)
            return pulumi.Input[projected], note  # type: ignore[valid-type]
        if origin in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            outputs = [a for a in members if typing.get_origin(a) is pulumi.Output]
            if outputs and all(m in outputs or m in [typing.get_args(o)[0] for o in outputs] for m in members):
                return self._type(outputs[0], where)  # `str | Output[str]`: a string input
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:  # `Union[SomeSpec, dict]`: the model says what the dict holds
                return self.model(models[0]), None
            if len(members) == 1:
                return self._type(members[0], where)
            if all(_scalar(m) for m in members):  # e.g. a quantity: "250m", 1 or 0.5
                return Any, "A string or a number."
            raise PackageError(f"{where}: no schema type for the union {hint!r}")
        if origin is typing.Literal:
            kinds = {type(a) for a in args}
            if len(kinds) != 1:
                raise PackageError(f"{where}: a Literal of mixed types {hint!r}")
            return kinds.pop(), "One of: " + ", ".join(f"`{a}`" for a in args) + "."
        if origin in (list, tuple, set, frozenset, Sequence):
            item = args[0] if args else Any
            projected, note = self._type(item, where)
            return list[projected], note
        if origin in (dict, Mapping):
            if args and args[0] is not str:
                raise PackageError(f"{where}: map keys must be strings, got {args[0]!r}")
            projected, note = self._type(args[1] if args else Any, where)
            return dict[str, projected], note
        if hint is Any:
            return Any, None
        if hint is SecretValue:
            return str, ("A secret: give it as one (YAML: a `secret: true` config value, or `fn::secret`); it "
                         "is stored only encrypted, whatever is given, and may be another resource's output.")
        if isinstance(hint, type):
            if hint in self.stand_ins:
                return self.stand_ins[hint], None
            if issubclass(hint, BaseModel):
                return self.model(hint), None
            if hint in (str, int, float, bool):
                return hint, None
        raise PackageError(f"{where}: no schema type for {hint!r}")


def _own_annotations(component: type) -> dict[str, Any]:
    """The class-level annotations of a component and its bases up to pulumi's (not pulumi's own)."""
    found: dict[str, Any] = {}
    for cls in reversed(component.__mro__):
        if cls.__module__.split(".")[0] not in ("pulumi", "builtins"):
            found.update(inspect.get_annotations(cls, eval_str=True))
    return found


def _is_secret(hint: Any) -> bool:
    """`SecretText`, or an optional one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _is_secret(args[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_secret(a) for a in args if a is not type(None))
    return hint is SecretValue


def _scalar(hint: Any) -> bool:
    return hint in (str, int, float, bool) or (typing.get_origin(hint) is typing.Annotated
                                              and _scalar(typing.get_args(hint)[0]))


def _snake(name: str) -> str:
    """The Python attribute whose camelCase (the analyzer's rule) is `name`."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _shown_default(value: Any) -> str:
    return f"`{json.dumps(value)}`" if isinstance(value, bool | int | float | str) else f"`{value}`"


class _Analyzer(Analyzer):
    """Pulumi's analyzer, told the descriptions of the stand-ins (which have no source to parse)
    and that a stand-in component is a reference to that component's resource in this package."""

    def __init__(self, projection: _Projection) -> None:
        super().__init__(PACKAGE)
        self.projection = projection

    def get_docstring(self, typ: type, name: str) -> str | None:
        if (typ, name) in self.projection.docs:
            return self.projection.docs[(typ, name)]
        return None

    def analyze_property(self, arg: type, typ: type, name: str, *, can_be_plain: bool, is_component_output: bool,
                         optional: bool | None = None) -> PropertyDefinition:
        token = self.projection.references.get(arg) if isinstance(arg, type) else None
        if token is not None:
            return PropertyDefinition(ref=f"#/resources/{token}", optional=bool(optional),
                                      description=self.get_docstring(typ, name))
        return super().analyze_property(arg, typ, name, can_be_plain=can_be_plain,
                                        is_component_output=is_component_output, optional=optional)


def _problem(path: str, reason: str) -> dict[str, str]:
    return {"property_path": path, "reason": reason}


class SandboxInfraProvider(ComponentProvider):
    """`ComponentProvider` over the projected components (see the module's docstring)."""

    def __init__(self, version: str = VERSION) -> None:
        classes = _component_classes()
        self.projection = _Projection(classes)
        self.by_name = {stand_in.__name__: component for component, stand_in in self.projection.stand_ins.items()}
        stand_ins = list(self.projection.stand_ins.values())
        # As ComponentProvider.__init__, with the analyzer above.
        self._name = PACKAGE
        self.analyzer = _Analyzer(self.projection)
        result = self.analyzer.analyze(stand_ins)
        self._components = {c.__name__: c for c in stand_ins}
        self._component_defs = result["component_definitions"]
        self._type_defs = result["type_definitions"]
        self._external_enum_types = result["external_enum_types"]
        self._dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
        self.schema_json = generate_schema(PACKAGE, version, None, self._component_defs, self._type_defs,
                                           self._dependencies).to_json()
        for type_name, prop in sorted(self.projection.secrets):  # the SDK's schema has no word for it
            definition = self.schema_json["types"][f"{PACKAGE}:index:{type_name}"]["properties"][prop]
            definition["secret"] = True  # and, unlike the rest of a spec, it may be an output (an Input)
            definition.pop("plain", None)
        self.schema_json["description"] = ("Pulumi components for AI-agent sandboxes on Kubernetes: the agent-sandbox "
                                           "install, tenant namespaces, hardened sandbox templates and warm pools.")
        super(ComponentProvider, self).__init__(version, json.dumps(self.schema_json))
        # The components this process constructed in this deployment, by (type token, name):
        # what a resource reference to one of them (a template's `tenant`) resolves to.
        self.constructed: dict[tuple[str, str], pulumi.ComponentResource] = {}

    def construct(self, name: str, resource_type: str, inputs: pulumi.Inputs,
                  options: pulumi.ResourceOptions | None = None) -> ConstructResult:
        self.validate_resource_type(self._name, resource_type)
        type_name = resource_type.rsplit(":", maxsplit=1)[-1]
        component_def = self._component_defs[type_name]
        problems: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {}
        for key in inputs:
            if key not in component_def.inputs:
                problems.append(_problem(key, f"unknown property; allowed: {', '.join(sorted(component_def.inputs))}"))
        for key, prop in component_def.inputs.items():
            value = inputs.get(key)
            if value is None:
                if not prop.optional:
                    problems.append(_problem(key, "required property is missing"))
                continue
            kwargs[component_def.inputs_mapping[key]] = self._value(value, prop, key, problems)
        if problems:
            messages = [p["reason"] for p in problems if not p["property_path"]]
            raise InputPropertiesError("; ".join([f"{resource_type} {name!r}: invalid inputs", *messages]),
                                       [p for p in problems if p["property_path"]])
        component = self.by_name[type_name]
        if "kubeconfig" in {f.name for f in dataclasses.fields(_args_class(component))}:
            kwargs["kubeconfig"], kwargs["context"] = kubernetes_credentials(options)
        # A WarmPool built here waits through this provider's PoolReadiness (components/pool_readiness.py).
        token = pool_readiness.in_package.set(True)
        try:
            instance = component(name, _args_class(component)(**kwargs), options)
        except ConfigError as error:
            # The component validated its spec: one message naming each bad key path and value.
            raise InputPropertiesError(str(error), []) from None
        finally:
            pool_readiness.in_package.reset(token)
        self.constructed[(resource_type, name)] = instance
        return ConstructResult(instance.urn, self.get_state(instance, component_def))

    def _value(self, value: Any, prop: PropertyDefinition, path: str, problems: list[dict[str, str]],
               secret: bool = False) -> Any:
        """`value` as the Python args class takes it: integral numbers as int, unknown keys reported,
        components passed by reference as the live components, a `secret` field's value as a
        SecretValue. Object keys stay camelCase: the component validates them with the spec's
        pydantic model, which uses the camelCase names."""
        if secret:
            return _secret_value(value, path, problems)
        if rpc.is_rpc_secret(value) or (isinstance(value, pulumi.Output) and _known_secret(value)):
            problems.append(_problem(path, "must not be a secret: it names or shapes the objects, which are stored "
                                           "in plain text (only the spec's secret fields take secrets)"))
            return None
        if isinstance(value, pulumi.Output) and not prop.plain:
            return value  # a field that takes another resource's output (a template's image)
        if isinstance(value, pulumi.Output):
            problems.append(_problem(path, "must be a plain value, known at preview (it decides which objects are "
                                           "created): not the output of another resource"))
            return None
        if prop.ref and prop.ref.startswith("#/resources/"):
            return self._component(value, prop.ref.rsplit("/", 1)[-1], path, problems)
        if prop.ref and prop.ref.startswith("#/types/"):
            type_def = self._type_defs[prop.ref.rsplit(":", 1)[-1]]
            if not isinstance(value, dict):
                problems.append(_problem(path, f"must be an object ({type_def.name}), got {_kind(value)}"))
                return None
            out = {}
            for key, item in value.items():
                if key not in type_def.properties:
                    problems.append(_problem(f"{path}.{key}", f"unknown key; allowed keys here: "
                                                              f"{', '.join(type_def.properties)}"))
                    continue
                out[key] = None if item is None else self._value(
                    item, type_def.properties[key], f"{path}.{key}", problems,
                    secret=(type_def.name, key) in self.projection.secrets)
            return out
        if prop.type == PropertyType.ARRAY and isinstance(value, list) and prop.items:
            return [self._value(item, prop.items, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        if prop.type == PropertyType.OBJECT and isinstance(value, dict) and prop.additional_properties:
            return {k: self._value(v, prop.additional_properties, f"{path}.{k}", problems) for k, v in value.items()}
        if isinstance(value, float) and value.is_integer() and prop.type != PropertyType.NUMBER:
            return int(value)  # every number crosses the wire as a float
        return value

    def _component(self, value: Any, token: str, path: str, problems: list[dict[str, str]]) -> Any:
        expected = self.by_name[token.rsplit(":", 1)[-1]]
        if isinstance(value, expected):
            return value
        # Not a property error: the CLI (v3.274.1) cannot print a resource reference's value
        # beside a property error (it panics), so this problem goes into the message.
        shown = value if isinstance(value, str) else type(value).__name__
        problems.append(_problem("", f"{path} must be a {token} declared in the same program (`{path}: ${{name}}`), "
                                     f"got {shown}"))
        return None


class _Components(pulumi.runtime.ResourceModule):
    """Resolves a resource reference to one of this package's components (a template's `tenant`)
    to the live component this process constructed: what SandboxTemplate needs of its tenant
    (the spec) is not in the tenant's outputs. Without it the SDK would hand over the reference
    as a bare URN, or as an unknown value where the engine sends an empty id."""

    def __init__(self, provider: SandboxInfraProvider) -> None:
        self.provider = provider

    def version(self) -> None:
        return None

    def construct(self, name: str, typ: str, urn: str) -> Any:
        # A reference this process did not construct stays a URN (reported by _component).
        return self.provider.constructed.get((typ, name), urn)


def kubernetes_credentials(options: pulumi.ResourceOptions | None) -> tuple[Any, Any]:
    """The kubeconfig and context of the Kubernetes provider that creates a component's objects,
    for the warm pool's wait (which reads the cluster itself): the pool and the wait must talk to
    the same cluster. That is the explicit provider passed to the component (YAML:
    `options: {providers: [${k8s}]}`), whose settings are read back from the deployment; else the
    default provider, configured by the stack's `kubernetes:kubeconfig` / `kubernetes:context`;
    else (None, None): the ambient kubeconfig ($KUBECONFIG, ~/.kube/config) and its current
    context, as a default provider without config reads it. The kubeconfig stays a secret."""
    provider = ((options.providers if options else None) or {}).get("kubernetes")
    if isinstance(provider, pulumi.ProviderResource):
        state = pulumi.runtime.invoke_output("pulumi:pulumi:getResource", {"urn": provider.urn}).apply(
            lambda found: (found or {}).get("state") or {})
        return (pulumi.Output.secret(state.apply(lambda s: s.get("kubeconfig") or None)),
                state.apply(lambda s: s.get("context") or None))
    config = pulumi.Config("kubernetes")
    return config.get_secret("kubeconfig"), config.get("context")


class _Servicer(ProviderServicer):
    """The SDK's provider servicer (Construct, GetSchema, ...; it serves components only) and the
    lifecycle of the package's one custom resource, the warm pool's wait (PoolReadiness: see
    components/pool_readiness.py for why the package cannot use the dynamic resource). Its
    inputs and outputs, diff and messages are the dynamic provider's."""

    @staticmethod
    async def _only_readiness(urn: str, context: Any) -> None:
        if pulumi.urn._parse_urn(urn).typ != pool_readiness.PACKAGE_TYPE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{PACKAGE} serves no custom resource {urn}")

    async def Check(self, request: Any, context: Any) -> Any:
        await self._only_readiness(request.urn, context)
        # The component built the inputs; as given, secrets and preview's unknowns included.
        return proto.CheckResponse(inputs=request.news)

    async def Diff(self, request: Any, context: Any) -> Any:
        await self._only_readiness(request.urn, context)
        keys = pool_readiness.changed(rpc.deserialize_properties(request.olds, keep_unknowns=True),
                                      rpc.deserialize_properties(request.news, keep_unknowns=True))
        return proto.DiffResponse(changes=proto.DiffResponse.DIFF_SOME if keys else proto.DiffResponse.DIFF_NONE,
                                  diffs=keys)

    async def _wait(self, properties: Any, context: Any) -> Any:
        props, _ = rpc.deserialize_properties_unwrap_secrets(properties)
        try:
            # Off the event loop: the wait polls for up to readyTimeout, and this process also
            # serves the other components' calls meanwhile.
            outs = await asyncio.to_thread(pool_readiness.wait, props)
        except pool_readiness.PoolNotReady as error:
            # As the dynamic provider's host reports it: the exception's name and message, no stack.
            await context.abort(grpc.StatusCode.UNKNOWN, f"PoolNotReady: {error}")
        return f"{props['namespace']}/{props['pool']}", await rpc.serialize_properties(outs, {})

    async def Create(self, request: Any, context: Any) -> Any:
        await self._only_readiness(request.urn, context)
        id_, outs = await self._wait(request.properties, context)
        return proto.CreateResponse(id=id_, properties=outs)

    async def Update(self, request: Any, context: Any) -> Any:
        await self._only_readiness(request.urn, context)
        _, outs = await self._wait(request.news, context)
        return proto.UpdateResponse(properties=outs)

    async def Delete(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()  # nothing in the cluster belongs to the wait

    async def Read(self, request: Any, context: Any) -> Any:
        # A refresh keeps what was waited for: the wait is a gate, not a cluster object.
        return proto.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)


def _known_secret(value: pulumi.Output) -> bool:
    """Whether an Output is marked secret, when that is already settled (the engine hands the
    provider its inputs resolved: an Output of construct's inputs is a ready future)."""
    future = value._data  # the public is_secret() is a coroutine, which construct cannot await
    return future.done() and not future.cancelled() and future.exception() is None and future.result().is_secret


def _secret_value(value: Any, path: str, problems: list[dict[str, str]]) -> SecretValue | None:
    """A secret field's value, as the spec holds secrets: a SecretValue, here of the text or of
    the Output that will give it (unknown at preview, another resource's output). VmEnvironment
    hands it to Pulumi only through `pulumi.Output.secret`, so whatever arrives (a secret, or
    not) is stored encrypted."""
    if rpc.is_rpc_secret(value):
        value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, pulumi.Output) or (isinstance(value, str) and value):
        return SecretValue(value)
    problems.append(_problem(path, f"must be a non-empty string (a secret), got {_kind(value)}"))
    return None


def _kind(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__)


def schema() -> dict[str, Any]:
    """The package schema, as `pulumi package get-schema provider` prints it (without the CLI:
    the CLI binds the provider's schema and writes it back, which drops what `_canonical` drops)."""
    out = _canonical(SandboxInfraProvider().schema_json)
    out.setdefault("config", {})
    if not out.get("dependencies"):
        out.pop("dependencies", None)
    return out


def _canonical(value: Any, in_container: bool = False) -> Any:
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _canonical(v, k in ("items", "additionalProperties")) for k, v in value.items()
            if not (in_container and k == "description") and not (k in ("required", "requiredInputs") and v == [])}


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def serve() -> None:
    """The plugin's entry point: what `component_provider_host` does, with SandboxInfraProvider."""
    provider = SandboxInfraProvider()
    pulumi.runtime.register_resource_module(PACKAGE, "index", _Components(provider))
    engine = next(a for a in sys.argv[1:] if not a.startswith("-"))  # as pulumi.provider.main, with _Servicer

    async def run() -> None:
        server = grpc.aio.server(options=_GRPC_CHANNEL_OPTIONS)
        provider_pb2_grpc.add_ResourceProviderServicer_to_server(_Servicer(provider, sys.argv[1:], engine), server)
        port = server.add_insecure_port(address="127.0.0.1:0")
        await server.start()
        sys.stdout.buffer.write(f"{port}\n".encode())
        sys.stdout.buffer.flush()
        await server.wait_for_termination()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def write_schema() -> None:
    SCHEMA_FILE.write_text(schema_text())
    print(f"wrote {SCHEMA_FILE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    write_schema()
