"""What this program is and what it pins: `--version`, the report tool version, `doctor`."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from components.pins import DEFAULT_AGENT_SANDBOX_VERSION, DEFAULT_KUBEVIRT_VERSION
from components.upstream import AGENT_SANDBOX_DIGESTS, PROJECT_ROOT

PROJECT = "sandbox-infra"
# The provider plugin is built from the one module version the Go module proxy serves (tools/README.md).
PROVIDER_GO_MOD = PROJECT_ROOT / "tools" / "pulumi-kubernetes" / "go.mod"


def installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def project_version() -> str:
    """The installed distribution's version; from pyproject.toml when run from a checkout not installed."""
    version = installed(PROJECT)
    if version:
        return version
    match = re.search(r'^version = "([^"]+)"', (PROJECT_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    return match.group(1) if match else "unknown"


def pinned_requirements(path: Path = PROJECT_ROOT / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def provider_plugin_version(path: Path = PROVIDER_GO_MOD) -> str | None:
    if not path.is_file():
        return None
    match = re.search(r"github\.com/pulumi/pulumi-kubernetes/provider/v4 v(\S+)", path.read_text())
    return match.group(1) if match else None


def versions() -> dict[str, str | list[str] | None]:
    """camelCase keys, as every JSON document of the command line."""
    pins = pinned_requirements()
    return {
        "sandboxInfra": project_version(),
        "agentSandbox": DEFAULT_AGENT_SANDBOX_VERSION,
        "agentSandboxSupported": sorted(AGENT_SANDBOX_DIGESTS),
        "kubevirt": DEFAULT_KUBEVIRT_VERSION,
        "pulumiSdk": pins.get("pulumi"),
        "pulumiKubernetesSdk": pins.get("pulumi-kubernetes"),
        "pulumiKubernetesProvider": provider_plugin_version(),
        "pulumiPolicy": pins.get("pulumi-policy"),
    }


def version_text() -> str:
    v = versions()
    return "\n".join([
        f"{PROJECT} {v['sandboxInfra']}",
        f"  agent-sandbox         {v['agentSandbox']} (default; supported: {', '.join(v['agentSandboxSupported'] or [])})",
        f"  KubeVirt              {v['kubevirt']}",
        f"  Pulumi SDK            {v['pulumiSdk']}",
        f"  pulumi-kubernetes     SDK {v['pulumiKubernetesSdk']}, provider plugin {v['pulumiKubernetesProvider'] or 'unknown'}",
        f"  pulumi-policy         {v['pulumiPolicy']}",
    ]) + "\n"
