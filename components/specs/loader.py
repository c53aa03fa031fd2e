"""Read a stack's config (from its file or from the Pulumi engine) into a StackSpec.

All problems are collected and reported in one ConfigError whose lines each name
the key path as written in `stacks/Pulumi.<stack>.yaml`, the bad value and what
is allowed, so a user fixes everything in one go and never sees a traceback.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..inputs import is_secret_path, load_file
from .layers import Layer, Layered, duplicate_entries, merge, secure_values
from .paths import provider_path_issues
from .secrets import REDACTED, REVEALED_CONTEXT, SECRET_REQUIRED, SecretValue
from .stack import Issue, StackSpec, cross_reference_issues
from .stack_files import STACKS_DIR, available_stacks, stack_file

PROJECT = "sandbox-infra"


def load_stack(stack: str, stacks_dir: Path = STACKS_DIR) -> StackSpec:
    """Load and validate a stack with its layers (offline: render, check, diff)."""
    layered, source = load_layered(stack, stacks_dir)
    return spec_from_config(layered.config, source=source)


def load_layered(stack: str, stacks_dir: Path = STACKS_DIR) -> tuple[Layered, str]:
    """The merged, not yet validated config of a stack, and the file it came from."""
    if not stacks_dir.is_dir():
        raise ConfigError(f"--stacks-dir {stacks_dir}: no such directory; give the directory of Pulumi.<stack>.yaml files")
    path = stack_file(stack, stacks_dir)
    # Only the stacks of the directory: a name like '../x' must not reach a file elsewhere.
    if stack not in available_stacks(stacks_dir) or not path.is_file():
        raise ConfigError(
            f"--stack: no stack named {stack!r} in {stacks_dir}; "
            f"allowed: {', '.join(available_stacks(stacks_dir)) or 'none (no Pulumi.<stack>.yaml files there)'}"
        )
    source = _display(path, stacks_dir)
    return with_layers(read_config_file(path, source, stack_file=True), source, stacks_dir), source


def with_layers(stack_config: dict[str, Any], stack_source: str, stacks_dir: Path | None = None) -> Layered:
    """Put the project and environment layers under a stack's own config."""
    stacks_dir = stacks_dir or STACKS_DIR  # looked up per call: tests point the Pulumi program elsewhere
    # Under the engine the stack's config did not come through read_config_file: check its entries here.
    problems = _entry_problems(stack_config)
    if problems:
        raise ConfigError(_report(stack_source, problems))
    layers = []
    project = stacks_dir / "layers" / "project.yaml"
    if project.is_file():
        name = _display(project, stacks_dir)
        layers.append(Layer(name, read_config_file(project, name, stack_file=False)))
    environment = _environment(stack_config, layers)
    if environment is not None and (stacks_dir / "layers" / f"{environment}.yaml").is_file():
        env_file = stacks_dir / "layers" / f"{environment}.yaml"
        name = _display(env_file, stacks_dir)
        layers.append(Layer(name, read_config_file(env_file, name, stack_file=False)))
    layers.append(Layer(stack_source, stack_config))
    return merge(layers)


def _environment(stack_config: dict[str, Any], layers: list[Layer]) -> str | None:
    for config in [stack_config, *(layer.config for layer in reversed(layers))]:
        cluster = config.get("cluster")
        if isinstance(cluster, dict) and isinstance(cluster.get("environment"), str):
            value = cluster["environment"]
            # Only a plain name selects a layer file; anything else is left to validation to reject.
            return value if re.fullmatch(r"[a-z0-9-]+", value) else None
    return None


def _display(path: Path, stacks_dir: Path) -> str:
    try:
        return str(path.relative_to(stacks_dir.parent))
    except ValueError:
        return str(path)


# Top-level keys of a Pulumi stack settings file; layer files (read by this program, never
# by the engine) hold only `config:`.
STACK_FILE_KEYS = ("config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment")
LAYER_FILE_KEYS = ("config",)
# Config namespaces of the packages this program uses; any other namespace is a typo
# (`sandbox-infr:warmPools` would otherwise be ignored, and its pools silently dropped).
KNOWN_NAMESPACES = (PROJECT, "kubernetes", "pulumi", "command")


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config_file(path: Path, label: str, stack_file: bool) -> dict[str, Any]:
    """The project's config of a stack file or layer file, checked as a whole document:
    known top-level keys and namespaces, no entry listed twice, no secret in a layer."""
    return config_from_document(load_file(path, label), label, stack_file)


def config_from_document(document: Any, label: str, stack_file: bool) -> dict[str, Any]:
    """`read_config_file` after the YAML is loaded (the property tests drive it directly)."""
    kind = "stack file" if stack_file else "layer file"
    if document is None and not stack_file:
        return {}  # an empty layer adds nothing
    if not isinstance(document, dict):
        raise ConfigError(f"{label}: a {kind} must be a mapping with a 'config:' mapping of "
                          f"{PROJECT}: settings; got {'nothing' if document is None else type(document).__name__}")
    allowed = STACK_FILE_KEYS if stack_file else LAYER_FILE_KEYS
    problems = [f"{key}: unknown top-level key{_did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
                for key in document if key not in allowed]
    if "config" not in document:
        problems.append(f"config: required key is missing; the {kind}'s settings go under config: as {PROJECT}:<key>")
    elif not isinstance(document["config"], dict | None):
        problems.append(f"config: must be a mapping of {PROJECT}:<key> settings")
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    own: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = key.rpartition(":")
        if namespace in ("", PROJECT):
            own[name] = value
        elif namespace not in KNOWN_NAMESPACES:
            guess = _did_you_mean(namespace, KNOWN_NAMESPACES).replace(f"{PROJECT!r}", f"'{PROJECT}:{name}'")
            problems.append(f"{key}: unknown config namespace {namespace!r}{guess}; "
                            f"allowed: {', '.join(n + ':' for n in KNOWN_NAMESPACES)}")
    problems += _entry_problems(own)
    if not stack_file:
        problems += [f"{key_path(secret)}: is a 'secure:' value in a layer file, which the Pulumi engine never decrypts: "
                     "set it in the stack file (stacks/Pulumi.<stack>.yaml)" for secret in secure_values(own)]
    if problems:
        raise ConfigError(_report(label, problems))
    return own


def _entry_problems(own: dict[str, Any]) -> list[str]:
    """Named entries that layer merging would silently fold together or drop."""
    problems = []
    for entry_path, name, first in duplicate_entries(own):
        if first < 0:
            problems.append(f"{key_path(entry_path)}: must be a string (entries are merged across layers by name)")
        else:
            problems.append(f"{key_path(entry_path)} = {name!r}: entry listed twice in this file (first at index {first}); "
                            "layers merge entries by name, so the two would silently become one")
    return problems


def project_config(config: dict[str, Any]) -> dict[str, Any]:
    """The project's own keys (`sandbox-infra:cluster` -> `cluster`). Keys of other
    namespaces (`kubernetes:`, `pulumi:`) belong to providers and are left to them,
    but a near miss of the project's own (`sandbox-infr:`) is an error."""
    own: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = key.rpartition(":")
        if namespace in ("", PROJECT):
            own[name] = value
        elif namespace not in KNOWN_NAMESPACES and difflib.get_close_matches(namespace, [PROJECT], cutoff=0.75):
            raise ConfigError(f"{key}: unknown config namespace {namespace!r} (did you mean '{PROJECT}:{name}'?)")
    return own


def pulumi_engine_config() -> dict[str, Any]:
    """The project's config as the Pulumi engine passed it to this program."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    own = {}
    for key, value in project_config(raw).items():
        try:
            own[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            own[key] = value  # a plain string value
    return own


def pulumi_engine_secret_keys() -> frozenset[str]:
    """The project's config keys that the engine marks secret (hold a `secure:` value)."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return frozenset(project_config(dict.fromkeys(keys)))


def spec_from_config(
    config: dict[str, Any], source: str = "stack config", secret_keys: Collection[str] | None = None,
    project: Path | None = None,
) -> StackSpec:
    """Validate the project config mapping; raise one ConfigError listing every problem.

    `secret_keys` is given under the Pulumi engine, whose config arrives decrypted: the
    top-level keys (`runtimes`) the engine marks secret. Secret-typed fields then take
    the decrypted text, and must sit under such a key (else they were set in plain text).
    `project`: where the program runs, given where the provider will use its local paths (a
    kubeconfig file, the render directory); they are then checked on this machine (paths.py).
    """
    spec = validated(StackSpec, config, source, context={REVEALED_CONTEXT: secret_keys is not None})
    issues = cross_reference_issues(spec)
    if project is not None:
        issues += provider_path_issues(spec, project)
    if secret_keys is not None:
        for path, value in secret_fields(spec):
            if value.sealed:  # a `secure:` value the engine did not decrypt: it sits in a layer file
                issues.append(Issue(path, None, "is a 'secure:' value in a layer file, which the Pulumi engine does not "
                                                "decrypt: set it in the stack file (stacks/Pulumi.<stack>.yaml)"))
            elif path[0] not in secret_keys:
                issues.append(Issue(path, None, _SECRET_HINT.format(path=key_path(path))))
    if issues:
        raise ConfigError(_report(source, [_describe_issue(i) for i in issues]))
    return spec


M = TypeVar("M", bound=BaseModel)


def validated(
    model: type[M], data: Any, source: str, prefix: str = f"{PROJECT}:", context: dict[str, Any] | None = None,
    secret_hint: str | None = None,
) -> M:
    """`model` validated from `data`, or one ConfigError naming every bad key under `prefix`.
    `secret_hint`: what a secret given in plain text should be instead (default: a stack file's
    `secure:` value)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(_report(source, [_describe(e, model, prefix, secret_hint) for e in err.errors()])) from None


_SECRET_HINT = (
    "must be a Pulumi secret (a 'secure:' value in the stack file), never plain text; "
    "set it with `pulumi config set --secret --path '{path}' ...`"
)


def secret_fields(model: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], SecretValue]]:
    """Every SecretValue in a spec, with its config key path (camelCase, as in the stack file)."""
    if isinstance(model, SecretValue):
        yield path, model
    elif isinstance(model, BaseModel):
        for name, info in type(model).model_fields.items():
            yield from secret_fields(getattr(model, name), (*path, info.alias or name))
    elif isinstance(model, list | tuple):
        for index, item in enumerate(model):
            yield from secret_fields(item, (*path, index))


def _report(source: str, lines: list[str]) -> str:
    header = f"{source}: invalid config ({len(lines)} problem{'s' if len(lines) != 1 else ''})"
    return "\n".join([header] + [f"  - {line}" for line in lines])


def key_path(loc: tuple[str | int, ...], prefix: str = f"{PROJECT}:") -> str:
    text = prefix
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if index else "") + part
    return text


def shown_value(loc: tuple[str | int, ...], value: Any) -> str:
    """` = <value>` for a message: ` = <secret>` where the value is or may be secret, nothing
    for a whole mapping or list, or the whole document (a non-YAML file passed by mistake)."""
    if value is None or not loc:
        return ""
    if is_secret_path(loc):
        return f" = {REDACTED}"
    if isinstance(value, dict | list) and value:
        return ""
    text = repr(value)
    return f" = {text if len(text) <= 80 else text[:77] + '...'}"


def _describe_issue(issue: Issue) -> str:
    return f"{key_path(issue.path)}{shown_value(issue.path, issue.value)}: {issue.problem}"


def _describe(error: Any, model: type[BaseModel], prefix: str, secret_hint: str | None = None) -> str:
    loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
    kind, value = error["type"], error.get("input")
    where = key_path(loc, prefix) if loc else prefix.rstrip(":.") or "(top level)"
    if kind == "extra_forbidden":
        allowed = allowed_keys(loc[:-1], model)
        return f"{where}: unknown key{_did_you_mean(str(loc[-1]), allowed)}; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == SECRET_REQUIRED:  # never echo the value: it may be the secret itself
        path_instead = ("; or give the path of a kubeconfig file instead (one word: a value with spaces or line "
                        "breaks is taken for the file's contents)") if loc and loc[-1] == "kubeconfig" else ""
        return f"{where}: {secret_hint or _SECRET_HINT.format(path=where)}{path_instead}"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{where}{shown_value(loc, value)}: {message[0].lower()}{message[1:]}"


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the member type of a union (e.g. 'str', 'int', 'function-after[...]') to locations.
    return isinstance(part, str) and (part in ("str", "int", "float") or "[" in part)


def _unwrap(annotation: Any) -> Any:
    """The model or container type behind Optional/Annotated wrappers."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            return annotation


def allowed_keys(loc: tuple[str | int, ...], model: type[BaseModel]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            current = typing.get_args(current)[0] if typing.get_args(current) else Any
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            current = field.annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []
