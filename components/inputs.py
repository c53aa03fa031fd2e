"""The one front door for every file the project reads: stack files, layers, fleet.yaml,
`check -f` input and upstream manifests.

Bytes are decoded as UTF-8 (anything else is named, not guessed), YAML is loaded by
PyYAML's libyaml-based safe loader plus checks that reject what YAML would silently
accept or blow up on:

- duplicate keys (YAML keeps the last one, so a pool or a setting would vanish);
- keys that are not strings (`123:`, `yes:` read as a boolean, `? [a]`);
- aliases to themselves (`a: &a [*a]`, a structure no walk of it would end);
- nesting deeper than MAX_DEPTH (deep `[[[[...` overflows the parser's recursion);
- aliases that expand to more than MAX_ALIAS_NODES nodes (a "billion laughs" bomb is
  rejected after counting, before anything walks the expanded tree);
- files larger than MAX_BYTES.

Every problem is an InputError (a ConfigError: exit 2, a RunError under the engine) that
names the file, the line and column and, where known, the key path. No message ever
quotes the offending text: syntax errors can sit inside a secret (cloud-init, a
kubeconfig), so only the position and PyYAML's description of the problem are shown.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
"""Deeper than any Kubernetes object or stack config (CRD schemas reach ~30)."""
MAX_ALIAS_NODES = 100_000
"""Nodes that aliases may add on top of the document as written; bombs add billions."""

_STR = "tag:yaml.org,2002:str"
_READ_AS = {"int": "a number", "float": "a number", "bool": "a boolean (YAML 1.1: yes/no/on/off too)",
            "null": "null", "timestamp": "a date"}
_MERGE = "tag:yaml.org,2002:merge"

# Keys whose values are, or may be, secret: never quote them, nor anything below them.
SECRET_KEYS = frozenset({"secure", "cloudInitTemplate", "sshAuthorizedKeys", "kubeconfig"})
_SECRET_NAME = re.compile(r"(password|passphrase|token|credential|private.?key)", re.IGNORECASE)


def is_secret_path(path: tuple[str | int, ...]) -> bool:
    """True when a value at `path` is or may be secret (so messages must not quote it)."""
    return any(isinstance(part, str) and (part.rpartition(":")[2] in SECRET_KEYS or _SECRET_NAME.search(part))
               for part in path)


class InputError(ConfigError):
    """A file (or stdin) that cannot be read as the YAML it should be."""


def public_path(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`path` cut after its first secret-like key: below it even key names may be secret
    (a credential pasted where a key was expected)."""
    for index in range(len(path)):
        if is_secret_path(path[: index + 1]):
            return path[: index + 1]
    return path


def format_path(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Document:
    """One YAML document: its data and the node it came from (for line numbers)."""

    data: Any
    node: Node

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1


def read_bytes(path: Path, label: str) -> bytes:
    """A file's bytes, or an InputError saying why it cannot be read (never a traceback)."""
    try:
        if path.is_dir():
            raise InputError(f"{label}: is a directory; give a file")
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{label}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to read it")
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{label}: cannot read ({error.strerror or error})") from None


def decode(data: bytes, label: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped); any other encoding is an InputError."""
    if len(data) > MAX_BYTES:
        raise InputError(f"{label}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to read it")
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise InputError(f"{label}: is {name} encoded; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line, column = before.count(b"\n") + 1, error.start - (before.rfind(b"\n") + 1) + 1
        hint = "; it looks UTF-16 encoded" if b"\x00" in data[:64] else ""
        raise InputError(f"{label}, line {line}, column {column}: is not UTF-8 text (byte 0x{data[error.start]:02x})"
                         f"{hint}; save it as UTF-8") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(f"{label}, line {line}: contains a NUL character; this is not a text file")
    return text


def read_text(path: Path, label: str | None = None) -> str:
    label = label or str(path)
    return decode(read_bytes(path, label), label)


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader (~6x faster than the pure-Python one). Its composer recurses in
    C without a depth limit, and deep nesting crashes the process, so `_check_depth` runs
    libyaml's parser (a state machine, no recursion) over the text first."""


class _Position:
    """The key path of the parser's position, from its event stream: where a syntax error
    sits, as a key path (keys are never secret; the values are not kept)."""

    def __init__(self) -> None:
        self.frames: list[list] = []  # [is_mapping, expecting_key, key or index]

    def path(self) -> tuple[str | int, ...]:
        return tuple(frame[2] for frame in self.frames if frame[2] is not None)

    def _value_done(self) -> None:
        if self.frames:
            frame = self.frames[-1]
            if frame[0]:
                frame[1] = True
            else:
                frame[2] = frame[2] + 1 if frame[2] is not None else 0

    def feed(self, event: yaml.Event) -> None:
        top = self.frames[-1] if self.frames else None
        if top is not None and not top[0] and not isinstance(event, yaml.CollectionEndEvent):
            top[2] = 0 if top[2] is None else top[2]  # the sequence item being parsed
        if isinstance(event, yaml.CollectionStartEvent):
            if top is not None and top[0] and top[1]:
                top[1], top[2] = False, "?"  # a complex key: a list or mapping as a key
            self.frames.append([isinstance(event, yaml.MappingStartEvent), True, None])
        elif isinstance(event, yaml.CollectionEndEvent):
            self.frames.pop()
            self._value_done()
        elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            if top is not None and top[0] and top[1]:
                top[1], top[2] = False, event.value if isinstance(event, yaml.ScalarEvent) else "*"
            else:
                self._value_done()


def _check_depth(text: str) -> None:
    position = _Position()
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.CollectionStartEvent) and len(position.frames) >= MAX_DEPTH:
                mark = event.start_mark
                raise _Problem(mark.line, mark.column, f"is nested more than {MAX_DEPTH} levels deep")
            position.feed(event)
    except yaml.YAMLError as error:
        error.key_path = position.path()  # type: ignore[attr-defined]
        raise


class _Problem(Exception):
    def __init__(self, line: int, column: int, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.path = line, column, message, path


def _inspect(root: Node) -> None:
    """Reject duplicate and non-string keys, recursive aliases, and alias expansion beyond
    the budget.

    Aliased nodes are shared in the composed graph; `seen` keeps the walk linear in the
    nodes as written, while the sizes it records count what construction and every later
    walk would see (aliases expanded).
    """
    seen: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    open_nodes: set[int] = set()  # on the current path: an alias to one of them is a cycle
    written = 0

    def visit(node: Node, path: tuple[str | int, ...], depth: int) -> tuple[int, int]:
        nonlocal written
        if id(node) in open_nodes:
            raise _Problem(node.start_mark.line, node.start_mark.column,
                           "contains an alias to itself (a recursive structure), which no config or "
                           "Kubernetes object can be", path)
        known = seen.get(id(node))
        if known is not None:
            size, height = known
            if depth + height > MAX_DEPTH:
                raise _Problem(node.start_mark.line, node.start_mark.column,
                               f"is nested more than {MAX_DEPTH} levels deep (through an alias)", path)
            return known
        written += 1
        size, height = 1, 0
        children: list[tuple[Node, tuple[str | int, ...]]] = []
        if isinstance(node, SequenceNode):
            children = [(item, (*path, index)) for index, item in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == _MERGE:
                    children.append((value, path))
                    continue
                if not isinstance(key, ScalarNode):
                    raise _Problem(key.start_mark.line, key.start_mark.column,
                                   "has a key that is a list or mapping; keys must be plain strings", path)
                if key.tag != _STR:
                    shown = "" if is_secret_path(path) else f" {key.value!r}"
                    read_as = _READ_AS.get(key.tag.rsplit(":", 1)[-1], key.tag)
                    raise _Problem(key.start_mark.line, key.start_mark.column,
                                   f"has the key{shown}, which YAML reads as {read_as}, not a string; "
                                   "keys must be strings (quote it)", path)
                if key.value in first_line:
                    shown = "a key" if is_secret_path(path) else f"the key {key.value!r}"
                    raise _Problem(key.start_mark.line, key.start_mark.column,
                                   f"has {shown} twice (first at line {first_line[key.value]}); "
                                   "YAML would silently keep only the last one, so remove one", path)
                first_line[key.value] = key.start_mark.line + 1
                children.append((value, (*path, key.value)))
        open_nodes.add(id(node))
        for child, child_path in children:
            child_size, child_height = visit(child, child_path, depth + 1)
            size += child_size
            height = max(height, child_height + 1)
            if size - written > MAX_ALIAS_NODES:
                raise _Problem(node.start_mark.line, node.start_mark.column,
                               f"expands its aliases to more than {MAX_ALIAS_NODES:,} nodes (a YAML alias bomb?); "
                               "write the values out or use fewer nested anchors", path)
        open_nodes.discard(id(node))
        seen[id(node)] = (size, height)
        return size, height

    visit(root, (), 1)


def _located(label: str, problem: _Problem) -> InputError:
    subject = format_path(public_path(problem.path)) or "the document"
    return InputError(f"{label}, line {problem.line + 1}, column {problem.column + 1}: {subject} {problem.message}")


def _syntax(label: str, error: yaml.YAMLError, text: str) -> InputError:
    # Never show the snippet PyYAML adds (str(error)): the offending line may hold a secret.
    if isinstance(error, yaml.reader.ReaderError):
        line = text[: error.position].count("\n") + 1 if isinstance(error.position, int) else 0
        char = f"U+{error.character:04X}" if isinstance(error.character, int) else "a character"
        return InputError(f"{label}, line {line}: contains the control character {char}, which YAML does not allow")
    mark = getattr(error, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if mark is not None and mark.line > text.count("\n"):  # libyaml places the end of the stream past the text
        where = f", line {text.count(chr(10)) + 1} (at the end of the file)"
    problem = getattr(error, "problem", None) or "cannot be parsed"
    context = getattr(error, "context", None)
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
        problem += " (a tab: YAML indents with spaces only)"
    path = format_path(public_path(getattr(error, "key_path", ())))
    near = f" (in {path})" if path else ""
    return InputError(f"{label}{where}: not valid YAML{near}: {problem}" + (f" ({context})" if context else ""))


def load_documents(text: str, label: str, digest_verified: bool = False) -> list[Document]:
    """Every document of a YAML stream (empty documents included, as data None).
    `digest_verified`: the bytes matched a pinned sha256 (upstream files), so their
    nesting is known and the depth pass is skipped."""
    documents = []
    loader = None
    try:
        if not digest_verified:
            _check_depth(text)
        loader = _Loader(text)
        while loader.check_node():
            node = loader.get_node()
            _inspect(node)
            documents.append(Document(loader.construct_document(node), node))
    except _Problem as problem:
        raise _located(label, problem) from None
    except yaml.YAMLError as error:
        raise _syntax(label, error, text) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def load_yaml(text: str, label: str) -> Any:
    """The one document of a YAML file (None when it is empty)."""
    documents = load_documents(text, label)
    if len(documents) > 1:
        raise InputError(f"{label}, line {documents[1].line}: holds {len(documents)} YAML documents; expected one")
    return documents[0].data if documents else None


def load_file(path: Path, label: str | None = None) -> Any:
    label = label or str(path)
    return load_yaml(read_text(path, label), label)
