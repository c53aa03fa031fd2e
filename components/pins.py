"""The upstream releases this project supports and installs by default: the one place
they are written. Plain constants, so that `--version` reads them without loading the
config models."""

from __future__ import annotations

from typing import Literal

AgentSandboxVersion = Literal["v0.4.6", "v0.5.6"]
DEFAULT_AGENT_SANDBOX_VERSION: AgentSandboxVersion = "v0.5.6"

KubeVirtVersion = Literal["v1.9.0"]
DEFAULT_KUBEVIRT_VERSION: KubeVirtVersion = "v1.9.0"
