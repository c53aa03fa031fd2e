"""Which stack a command means, the way the Pulumi CLI decides it.

`-s/--stack NAME`, else `PULUMI_STACK`, else the stack selected in this project's
workspace (`pulumi stack select`). The selection is read from the file the Pulumi CLI
keeps it in, `$PULUMI_HOME/workspaces/<project>-<sha1 of Pulumi.yaml's path>-workspace.json`
(PULUMI_HOME defaults to ~/.pulumi), under the current backend (`PULUMI_BACKEND_URL`,
else `current` in `$PULUMI_HOME/credentials.json`). Reading the file, rather than
running `pulumi stack --show-name`, works without the CLI on PATH, costs no process
start, and never logs in anywhere.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path

from components.errors import ConfigError
from components.inputs import load_file
from components.specs.stack_files import available_stacks


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pulumi_home() -> Path:
    return Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no selection, or a file the CLI is rewriting: as if nothing were selected
    return data if isinstance(data, dict) else {}


def workspace_selection(project_root: Path) -> str | None:
    """The stack `pulumi stack select` chose for this project, or None."""
    project_file = project_root / "Pulumi.yaml"
    if not project_file.is_file():
        return None
    project = load_file(project_file, str(project_file))
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str):
        return None
    digest = hashlib.sha1(str(project_file.absolute()).encode()).hexdigest()
    settings = _json(pulumi_home() / "workspaces" / f"{name}-{digest}-workspace.json")
    backend = os.environ.get("PULUMI_BACKEND_URL") or _json(pulumi_home() / "credentials.json").get("current")
    # Newer CLIs keep one selection per backend; older ones a single `stack`.
    selected = (settings.get("stacks") or {}).get(backend) if backend else None
    selected = selected or settings.get("stack")
    if not isinstance(selected, str) or not selected:
        return None
    return selected.rsplit("/", 1)[-1]  # "organization/sandbox-infra/dev" -> "dev"


def resolve_stack(given: str | None, stacks_dir: Path, alternative: str = "") -> str:
    """The stack a command works on, checked against the stack files."""
    stack, source = given, "--stack"
    if not stack and os.environ.get("PULUMI_STACK"):
        stack, source = os.environ["PULUMI_STACK"], "PULUMI_STACK"
    if not stack:
        stack, source = workspace_selection(stacks_dir.resolve().parent), "the selected stack"
    if not stacks_dir.is_dir():
        raise ConfigError(f"--stacks-dir {stacks_dir}: no such directory; give the directory of Pulumi.<stack>.yaml files")
    known = available_stacks(stacks_dir)
    if not stack:
        raise ConfigError(f"no stack given: pass -s/--stack NAME, set PULUMI_STACK, or `pulumi stack select` one{alternative}; "
                          f"allowed: {', '.join(known) or 'none'}")
    if stack not in known:
        # Only the stacks of the directory: a name like '../x' must not reach a file elsewhere.
        raise ConfigError(f"{source}: no stack named {stack!r} in {stacks_dir}{did_you_mean(stack, known)}; "
                          f"allowed: {', '.join(known) or 'none (no Pulumi.<stack>.yaml files there)'}")
    return stack
