"""Property-based tests of the input front door: stack configs and manifest streams,
valid ones taken from the project itself and then mutated (wrong types, missing keys,
out-of-range values, odd unicode, deep nesting, unknown keys, planted secrets, broken
bytes and YAML), driven through the same in-process functions the command line uses.

Whatever the input, the outcome is either a result or one PolicyInputError (ConfigError is one; exit 0 or 2):
never another exception (a traceback), never a planted secret in any output, and every
problem the error lists names a key path (or a line, for text that is not YAML) that
exists in the input. Hypothesis' deadline holds each example to under a second.

CONFIG_EXAMPLES + MANIFEST_EXAMPLES >= 10,000 per run.
"""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sandbox_policy import check
from sandbox_policy.errors import PolicyInputError
from sandbox_policy.rule import Context

from components.inputs import decode, load_yaml
from components.inputs import load_documents as load_yaml_documents
from components.manifests.stack import render_stack
from components.specs.layers import Layer, merge
from components.specs.loader import allowed_keys, available_stacks, config_from_document, load_layered, spec_from_config
from components.specs.stack import StackSpec
from components.upstream import UpstreamLoader
from sandbox_infra.report import render as render_report
from sandbox_infra.sources import load_documents

from .bad_inputs.cases import BOMB, SECRET

CONFIG_EXAMPLES = int(os.environ.get("CONFIG_EXAMPLES", 6_000))
MANIFEST_EXAMPLES = int(os.environ.get("MANIFEST_EXAMPLES", 4_000))
LABEL = "stacks/Pulumi.fuzz.yaml"
PROPERTY_SETTINGS = dict(
    deadline=timedelta(seconds=1),  # "each run under a second"
    database=None,  # nothing written into the checkout; a failure prints its reproduction blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # type: dict[str, Any]

ROOT = Path(__file__).resolve().parents[1]
# The shipped stacks, each merged with its layers: valid, realistic starting points.
CONFIG_BASES = [load_layered(stack)[0].config for stack in available_stacks()]
UPSTREAM = UpstreamLoader(allow_download=False)  # the pinned mirror only; parsed once per run

# Layers hold no runtimes: those carry `secure:` values, which only a stack file may hold.
LAYER_BASES = [{key: value for key, value in base.items() if key != "runtimes"} for base in CONFIG_BASES]
MANIFEST_BASES = [
    document
    for path in sorted((ROOT / "tests" / "policy_examples").rglob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if isinstance(document, dict)
]

ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\u202e", "\ufeff", "\u0085", "\u200b", "\u00e9", "\U0001f600", "\x00", "\t", "\r\n", "~", "", " ",
                     "yes", "null", "0x1F", "1e400", "-", "*", "&a", "!!python/object", "{", "}", "[", "]", ":", "#"]),
)
KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)
WRONG = st.one_of(
    st.booleans(), st.none(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), ODD_TEXT,
    st.lists(st.integers(), max_size=3), st.dictionaries(KEY, st.integers(), max_size=2),
)
OUT_OF_RANGE = [-1, 0, -(2**63), 2**63, 10**30, 1e308, float("inf"), float("-inf"), float("nan"), 0.5]
SECRET_VALUES = [
    {"secure": f"v1:{SECRET}"},
    f"#cloud-config\npassword: {SECRET}\n",
    f"apiVersion: v1\nusers:\n- user: {{token: {SECRET}}}\n",
    f"ssh-ed25519 {SECRET} user@host",
]
SECRET_KEYS = ("cloudInitTemplate", "sshAuthorizedKeys", "kubeconfig")
# Half the texts stay intact, so that most examples reach validation and the rules.
TEXT_OPERATIONS = ["none"] * 7 + ["byte", "tab", "dup-line", "truncate", "namespace", "bomb", "cycle", "nesting"]
OPERATIONS = ["delete", "wrong", "range", "unicode", "deep", "unknown", "secret", "duplicate", "schema", "schema"]
# Values of the kinds the config takes (quantities, rates, durations, enums, images, ...).
PLAUSIBLE = ["1", 1, 2, 0, 1000, 0.99, 0.5, True, False, "2Gi", "250m", "30/min", "8s", "2s", "managed", "external",
             "none", "pod", "kubevirt-vm", "hpa", "keda", "pool", "single", "Always", "Halted", "Exists", "Equal",
             "NoSchedule", "OnReplenish", "Recreate", "Unmanaged", "untrusted", "trusted", "gvisor", "python",
             "agents-dev", "ghcr.io/example/app:1.0", "https://example.com/x.yaml", "a" * 64, {}, [],
             [{"name": "x"}], {"name": "x", "kind": "VirtualMachineInstancetype"}, [{"key": "gpu", "operator": "Exists"}],
             {"engine": "keda"}, {"claimRate": "30/min", "readyTime": "8s", "hitRatio": 0.99},
             [{"name": "data", "size": "1Gi"}], {"kubernetes.io/arch": "amd64"}]


def paths_of(value: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*path, index))
    return found


def _parent(tree: Any, path: tuple) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]], schema: type | None = None) -> tuple[dict[str, Any], bool]:
    """A base tree with 0-3 mutations, and whether a secret was planted at a secret key.

    Where to mutate comes from one seeded Random (a hypothesis draw per choice cost more than
    the rest of an example); the bad values themselves are hypothesis strategies."""
    rnd = draw(st.randoms(use_true_random=True))
    tree = copy.deepcopy(rnd.choice(bases))
    planted = False
    for _ in range(rnd.randint(0, 3)):
        path = rnd.choice(paths_of(tree))
        operation = rnd.choice(OPERATIONS)
        if not path:
            continue  # the document itself: its shape is mutated as text below
        parent, last = _parent(tree, path), path[-1]
        if operation == "delete":
            del parent[last]
        elif operation == "wrong":
            parent[last] = draw(WRONG)
        elif operation == "range":
            parent[last] = rnd.choice(OUT_OF_RANGE)
        elif operation == "unicode":
            current = parent[last]
            parent[last] = (current + draw(ODD_TEXT)) if isinstance(current, str) else draw(ODD_TEXT)
        elif operation == "deep":
            parent[last] = _nested(rnd.randint(1, 120))
        elif operation == "unknown" and isinstance(parent[last], dict):
            near = str(rnd.choice([*parent[last], "x"]))
            parent[last][rnd.choice([near[:-1] or "y", near + "s", near.upper(), draw(KEY)])] = 1
        elif operation == "schema" and isinstance(parent[last], dict) and schema is not None:
            # A key the model has here but the base does not set: reaches validators the shipped stacks never do.
            missing = [k for k in allowed_keys(path, schema) if k not in parent[last]]
            if missing:
                parent[last][rnd.choice(missing)] = copy.deepcopy(rnd.choice(PLAUSIBLE)) if rnd.random() < 0.7 \
                    else draw(WRONG)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif operation == "secret":
            value = copy.deepcopy(rnd.choice(SECRET_VALUES))  # the listed values are shared objects
            if isinstance(parent, dict) and (isinstance(value, dict) or last in SECRET_KEYS):
                parent[last] = value
                planted = True
            elif isinstance(parent, dict):
                parent[rnd.choice(SECRET_KEYS)] = value  # an unknown key holding a secret
                planted = True
    return tree, planted


@st.composite
def as_text(draw: st.DrawFn, document: Any, multi: bool) -> bytes:
    """YAML text of `document`, sometimes broken on the way: bytes, tabs, lines, bombs."""
    rnd = draw(st.randoms(use_true_random=True))
    dump = yaml.dump_all if multi else yaml.dump
    text = dump(document, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=rnd.random() < 0.5,
                width=rnd.choice([80, 10**6]))
    lines = text.splitlines(keepends=True)
    operation = rnd.choice(TEXT_OPERATIONS)
    at = rnd.randrange(max(len(lines), 1))
    if operation == "byte":
        return text.encode()[: at * 7] + rnd.choice([b"\xe9", b"\xff\xfe", b"\x80", b"\x07"]) + text.encode()[at * 7:]
    if operation == "tab" and lines:
        lines[at] = "\t" + lines[at]
    elif operation == "dup-line" and lines:
        lines.insert(at, lines[at])
    elif operation == "truncate":
        return text.encode()[: rnd.randint(0, len(text))]
    elif operation == "namespace":
        near = rnd.choice(["sandbox-infr:", "sandbox_infra:", "Sandbox-Infra:", ":", "kubernetes:"])
        return text.replace("sandbox-infra:", near, 1).encode()
    elif operation == "bomb":
        lines.append(BOMB)
    elif operation == "cycle":
        lines.append("cycle: &cycle {self: [*cycle]}\n")
    elif operation == "nesting":
        lines.append("deep: " + "[" * rnd.randint(60, 3000) + "\n")
    return "".join(lines).encode()


# --- key paths named by errors ----------------------------------------------------------

_SHAPE = re.compile(r"document (?P<number>\d+) \(line \d+\): (?:items\[(?P<item>\d+)\] \(line \d+\): )?"
                    r"(?P<path>[A-Za-z][\w.\[\]-]*) (?P<problem>must|is missing)")
_PROBLEM = re.compile(r"^  - (?P<path>\S+?)(?: = .*?)?: ")
_LINE = re.compile(r", line (?P<line>\d+)")


def _resolves(tree: Any, text: str) -> bool:
    """Whether a dotted/indexed key path (`warmPools[0].slo`) exists in `tree`; keys may hold dots."""
    if not text:
        return True
    if isinstance(tree, list):
        match = re.match(r"^\[(\d+)\]\.?", text)
        return bool(match) and int(match[1]) < len(tree) and _resolves(tree[int(match[1])], text[match.end():])
    if isinstance(tree, dict):
        for key in tree:
            key_text = str(key)
            if text == key_text:
                return True
            if text.startswith(key_text) and text[len(key_text)] in ".[":
                rest = text[len(key_text):].removeprefix(".")
                if _resolves(tree[key], rest):
                    return True
    return False


def assert_names_the_input(message: str, document: Any, text: str, configs: list[dict[str, Any]]) -> None:
    """Text that is not YAML is located by line; a loaded document's problems by key paths
    that exist in it (`sandbox-infra:warmPools[0].replicas` under `config:`)."""
    line = _LINE.search(message.splitlines()[0])
    if line is not None:
        assert 1 <= int(line["line"]) <= text.count("\n") + 1, message
    document = document if isinstance(document, dict) else {}
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    own = {key.rpartition(":")[2]: value for key, value in config.items() if isinstance(key, str)}
    for problem in filter(None, (_PROBLEM.match(row) for row in message.splitlines()[1:])):
        path = problem["path"]
        if "missing" in problem.string or "is required" in problem.string:  # the parent is what exists
            path = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path) if re.search(r"[.\[]", path.partition(":")[2] or path) else ""
        short = path.removeprefix("sandbox-infra:")
        assert (_resolves(document, path) or _resolves(config, path) or _resolves(own, short)
                or any(_resolves(other, short) for other in configs)), f"{path!r} is not in the input:\n{message}"


# --- the properties ---------------------------------------------------------------------


@pytest.mark.long
@settings(max_examples=CONFIG_EXAMPLES, **PROPERTY_SETTINGS)
@given(st.data())
def test_any_stack_config_is_a_spec_or_one_named_error(data: st.DataObject) -> None:
    config, planted = data.draw(mutated(CONFIG_BASES, StackSpec))
    document = {"config": {f"sandbox-infra:{key}": value for key, value in config.items()}}
    if data.draw(st.integers(0, 9)) == 0:
        document = data.draw(st.sampled_from([{"confg": document["config"]}, {}, {"config": None}, {"config": []},
                                              {**document, "encryptionsalt": "v1:x", "secretprovider": "x"}]))
    raw = data.draw(as_text(document, multi=False))
    # Half the stacks sit on a (mutated) project layer, as in stacks/layers/project.yaml.
    layer, layer_planted = data.draw(mutated(LAYER_BASES, StackSpec)) if data.draw(st.booleans()) else ({}, False)
    planted = planted or layer_planted
    outputs = []
    loaded: Any = None
    layered: dict[str, Any] = {}
    try:
        text = decode(raw, LABEL)
        loaded = load_yaml(text, LABEL)
        own = config_from_document(loaded, LABEL, stack_file=True)
        layer_own = config_from_document({"config": {f"sandbox-infra:{k}": v for k, v in layer.items()}},
                                         "stacks/layers/project.yaml", stack_file=False)
        layered = merge([Layer("stacks/layers/project.yaml", layer_own), Layer(LABEL, own)]).config
        spec = spec_from_config(layered, source=LABEL)
        outputs.append(json.dumps(spec.model_dump(mode="json", by_alias=True)))  # what `config explain` prints
        # What `render` prints, but the upstream CRDs (large, and no config reaches them).
        rendered = [m for m in render_stack(spec, UPSTREAM) if m["kind"] != "CustomResourceDefinition"]
        outputs.append(json.dumps(rendered, default=str))
        event("valid: validated and rendered")
    except PolicyInputError as error:
        event("refused: one config error")
        message = str(error)
        outputs.append(message)
        assert_names_the_input(message, loaded, raw.decode("utf-8", "replace"), [layer, layered])
    if planted:
        assert all(SECRET not in output for output in outputs), outputs


@pytest.mark.long
@settings(max_examples=MANIFEST_EXAMPLES, **PROPERTY_SETTINGS)
@given(st.data())
def test_any_manifest_stream_is_checked_or_one_named_error(data: st.DataObject) -> None:
    objects = [data.draw(mutated(MANIFEST_BASES))[0] for _ in range(data.draw(st.integers(1, 3)))]  # a stream
    raw = data.draw(as_text(objects, multi=True))
    try:
        located = load_documents(decode(raw, LABEL), None, LABEL)
        report = check([item.manifest for item in located], Context())
        render_report(report, "fuzz", located, data.draw(st.sampled_from(["table", "json", "sarif"])))
        event("checked: " + ("passed" if report.passed else "failed"))
    except PolicyInputError as error:
        event("refused: one input error")
        message = str(error)
        line = _LINE.search(message)
        if line is not None:
            assert 1 <= int(line["line"]) <= raw.count(b"\n") + 1, message
        shape = _SHAPE.search(message)
        if shape is not None:  # the stream loaded; the object's field is named by its path in it
            documents = [d.data for d in load_yaml_documents(raw.decode(), LABEL)]
            document = documents[int(shape["number"]) - 1]
            if shape["item"] is not None:
                document = document["items"][int(shape["item"])]
            path = shape["path"]
            if shape["problem"] == "is missing":  # then its parent is what exists
                path = path.rpartition(".")[0]
            assert _resolves(document, path), message


@pytest.mark.parametrize("stack", available_stacks())
def test_the_unmutated_bases_are_valid(stack: str) -> None:
    """The starting points pass, so the properties test mutations, not broken fixtures."""
    spec_from_config(load_layered(stack)[0].config, source=stack)
    assert MANIFEST_BASES
