"""Helpers shared by the e2e tests."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.manifests.common import Manifest
from components.manifests.stack import render_stack
from components.specs.loader import STACKS_DIR, load_stack
from components.upstream import UpstreamLoader
from sandbox_infra.fleet import load_fleet

from .toolchain import missing_reason

# The stacks of the shipped fleet (a developer's own untracked stack file is not one).
SHIPPED_STACKS = load_fleet().stacks


def require(*binaries: str) -> None:
    reason = missing_reason(*binaries)
    if reason:
        pytest.skip(reason)


def render(stack: str, stacks_dir: Path = STACKS_DIR) -> list[Manifest]:
    return render_stack(load_stack(stack, stacks_dir), UpstreamLoader())


def shipped_contexts() -> list[str]:
    """The kubeconfig contexts the shipped stacks name (staging and prod target their cluster's
    context); the e2e kubeconfig maps each of them to the local control plane."""
    return [context for stack in SHIPPED_STACKS if (context := load_stack(stack).cluster.provider.context)]


def contains(stored: Any, sent: Any) -> bool:
    """Everything we sent is stored unchanged (the server may add defaults, but not drop or alter;
    zero values of `omitempty` fields, like `globalDefault: false`, are not stored at all)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(
            contains(stored[k], v) if k in stored else v in (False, "", [], {}, None) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(contains, stored, sent))
    return stored == sent or str(stored) == str(sent)


def lost_fields(stored: Any, sent: Any, path: str = "") -> list[str]:
    """Every field of `sent` that `stored` lacks or holds differently: what the API server
    pruned (a field its schema does not know) or changed. Strict: unlike built-in kinds,
    custom resources are stored as sent, so even an empty value must come back."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{path or '.'}: sent a mapping, stored {stored!r:.80}"]
        return [lost for key, value in sent.items()
                for lost in (lost_fields(stored[key], value, f"{path}.{key}") if key in stored
                             else [f"{path}.{key}: pruned"])]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{path}: sent {len(sent)} items, stored {stored!r:.80}"]
        return [lost for index, (a, b) in enumerate(zip(stored, sent, strict=True))
                for lost in lost_fields(a, b, f"{path}[{index}]")]
    return [] if stored == sent else [f"{path}: sent {sent!r:.80}, stored {stored!r:.80}"]


def is_kubevirt(manifest: Manifest) -> bool:
    return manifest["apiVersion"].split("/")[0].endswith("kubevirt.io")


_POOL_WAIT_FAILED = re.compile(r"PoolReadiness \S+ creating \((\d+)s\) error: PoolNotReady")


def failed_pool_wait(output: str) -> tuple[int | None, list[str]]:
    """From the output of a `pulumi up` whose pool wait failed: after how many seconds the
    engine reported the PoolReadiness failing (None: no such line), and the stripped lines of
    its Diagnostics section (where the one PoolNotReady message is)."""
    waited = _POOL_WAIT_FAILED.search(output)
    diagnostics = output.split("\nDiagnostics:", 1)[-1].split("\nOutputs:", 1)[0]
    return (int(waited[1]) if waited else None), [line.strip() for line in diagnostics.splitlines()]


def ready_timeout_message(up: Callable[[], subprocess.CompletedProcess], bound: int) -> tuple[str, str]:
    """Run `up`, a `pulumi up` whose pool wait must fail at its readyTimeout (`bound` seconds):
    it fails, the engine reports the wait failing at the bound (within 10 s), and the
    Diagnostics hold one PoolNotReady line. Returns that line and the whole output."""
    started = time.monotonic()
    result = up()
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    waited, diagnostics = failed_pool_wait(output)
    print(f"\npulumi up: exit {result.returncode} after {elapsed:.1f} s; the wait failed after "
          f"{waited if waited is not None else '?'} s (readyTimeout {bound} s)")
    assert result.returncode != 0, output[-4000:]
    assert waited is not None and bound <= waited < bound + 10, output[-4000:]
    (message,) = [line for line in diagnostics if "PoolNotReady" in line]
    return message, output
