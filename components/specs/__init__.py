"""Typed stack config: pydantic models with the secure defaults, in one place.

The names below load on first use, so that importing one light module of the package
(`components.specs.stack_files`) does not build every model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"StackSpec": "stack", "load_stack": "loader", "spec_from_config": "loader"}
__all__ = ["StackSpec", "load_stack", "spec_from_config"]

if TYPE_CHECKING:
    from .loader import load_stack, spec_from_config
    from .stack import StackSpec


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components.specs' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
