"""The provider's local paths (`cluster.provider.kubeconfig` as a path, `renderYamlToDirectory`),
checked on this machine before the engine registers anything.

Without these checks a missing kubeconfig surfaces as a provider error halfway through
`pulumi up`, and a render directory pointing at the project or the home folder fills it with
YAML. They run where the paths are used: under the Pulumi engine (`__main__.py`), whose working
directory is the project folder; offline commands (render, check, diff) never read them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .secrets import SecretValue
from .stack import Issue, StackSpec

KUBECONFIG = ("cluster", "provider", "kubeconfig")
RENDER_DIRECTORY = ("cluster", "provider", "renderYamlToDirectory")
STACKS_DIR = "stacks"
"""Pulumi.yaml's stackConfigDir."""


def resolve(value: str, project: Path) -> Path:
    """As pulumi-kubernetes reads it: `~` expanded, relative to the program's working directory."""
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else project / path).resolve()


def _kubeconfig_issues(value: str, project: Path) -> list[Issue]:
    # The message never quotes the value or the resolved path: a credential pasted where the
    # path belongs (a token is one word) would be echoed.
    path = resolve(value, project)
    fix = "give the path of a readable kubeconfig file (~ expanded, relative to the project folder), or its contents as a Pulumi secret"
    if not path.exists():
        return [Issue(KUBECONFIG, None, f"names no file; {fix}")]
    if not path.is_file():
        return [Issue(KUBECONFIG, None, f"names a directory or special file, not a kubeconfig file; {fix}")]
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as error:
        return [Issue(KUBECONFIG, None, f"names a file this user cannot read ({error.strerror}); {fix}")]
    return []


def _is_writable(directory: Path) -> str | None:
    """Why files cannot be created in `directory` (tried for real: os.access says yes to root
    on a read-only mount), or None."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return None
    except OSError as error:
        return error.strerror or str(error)


def _render_directory_issues(value: str, project: Path) -> list[Issue]:
    path = resolve(value, project)
    forbidden = {project.resolve(): "the project folder", (project / STACKS_DIR).resolve(): "the stacks folder",
                 Path.home().resolve(): "the home folder"}
    if path in forbidden:
        return [Issue(RENDER_DIRECTORY, value, f"is {forbidden[path]} ({path}), which the rendered YAML would mix with "
                                                "files of its own: name a directory of its own, such as out/")]
    if path.exists() and not path.is_dir():
        return [Issue(RENDER_DIRECTORY, value, f"names a file ({path}), not a directory")]
    # pulumi-kubernetes creates the directory (and its parents): the nearest existing one must take files.
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return [Issue(RENDER_DIRECTORY, value, f"cannot be created: {existing} is a file")]
    why = _is_writable(existing)
    if why is not None:
        return [Issue(RENDER_DIRECTORY, value, f"is not writable: cannot create files in {existing} ({why})")]
    return []


def provider_path_issues(spec: StackSpec, project: Path) -> list[Issue]:
    """Problems with the provider's local paths, resolved against `project` (the working directory
    of the program under the engine)."""
    provider = spec.cluster.provider
    issues: list[Issue] = []
    if provider.kubeconfig is not None and not isinstance(provider.kubeconfig, SecretValue):
        issues += _kubeconfig_issues(provider.kubeconfig, project)  # contents (a SecretValue) are never read here
    if provider.render_yaml_to_directory:
        issues += _render_directory_issues(provider.render_yaml_to_directory, project)
    return issues
