"""Typed stack config: pydantic models with the secure defaults, in one place."""

from .loader import load_stack, spec_from_config
from .stack import StackSpec

__all__ = ["StackSpec", "load_stack", "spec_from_config"]
