"""The agent-sandbox install: pinned version, controller image and sizing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..pins import DEFAULT_AGENT_SANDBOX_VERSION, AgentSandboxVersion
from .base import DnsSubdomain, Image, Resources, Spec

# The API version of every agent-sandbox custom resource follows from the installed
# release: v0.4.6 serves v1alpha1 only; v0.5.6 stores v1beta1 (v1alpha1 still served
# through the conversion webhook, but new objects should use the storage version).
API_VERSION_BY_RELEASE: dict[str, str] = {"v0.4.6": "v1alpha1", "v0.5.6": "v1beta1"}

RELEASED_IMAGE_REPOSITORY = "registry.k8s.io/agent-sandbox/agent-sandbox-controller"


class ControllerSpec(Spec):
    replicas: int = Field(default=1, ge=1, le=5)
    resources: Resources = Resources(
        requests={"cpu": "100m", "memory": "128Mi"},
        limits={"cpu": "1", "memory": "512Mi"},
    )
    image: Image | None = None
    """Full image override (e.g. a digest-pinned build). Default: the released image."""
    registry_mirror: DnsSubdomain | None = None
    """Air-gapped clusters: pull the released image path from this registry host instead."""


class AgentSandboxSpec(Spec):
    install: Literal["managed", "external", "none"] = "managed"
    """managed: this stack installs the release. external ("bring your own"): installed by
    someone else; `version` says which release, and the program checks its CRDs are
    registered before creating custom resources. none: no pod runtimes in this stack."""
    version: AgentSandboxVersion = DEFAULT_AGENT_SANDBOX_VERSION
    controller: ControllerSpec = ControllerSpec()

    @property
    def api_version(self) -> str:
        return API_VERSION_BY_RELEASE[self.version]

    def controller_image(self) -> str:
        if self.controller.image:
            return self.controller.image
        repository = RELEASED_IMAGE_REPOSITORY
        if self.controller.registry_mirror:
            repository = self.controller.registry_mirror + "/" + repository.split("/", 1)[1]
        return f"{repository}:{self.version}"
