"""No `assert` and no bare ValueError where a user's input can reach them: under `pulumi up`
either ends in a traceback instead of the one named config error (ConfigError -> RunError).

ValueError stays allowed where it is the documented way to reject a value: pydantic
validators in components/specs/ (pydantic turns it into a ValidationError, which the loader
reports with its key path) and the sizing model's parsers, whose callers convert it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "sandbox_infra")
VALUE_ERROR_ALLOWED = ("specs/", "sizing/")


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return exc.id if isinstance(exc, ast.Name) else None


def test_no_assert_or_bare_value_error_on_user_reachable_paths() -> None:
    found = []
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix().partition("/")[2]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assert):
                found.append(f"{relative}:{node.lineno}: assert")
            elif isinstance(node, ast.Raise) and node.exc is not None and _raised_name(node) == "ValueError" \
                    and not relative.startswith(VALUE_ERROR_ALLOWED):
                found.append(f"{relative}:{node.lineno}: raise ValueError")
    assert not found, "raise ConfigError (or a subclass) instead:\n" + "\n".join(found)
