"""Sandbox templates: the pod every sandbox of a kind starts from, secure by default."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import DnsLabel, DnsSubdomain, Image, Quantity, Resources, Spec, UserLabels, UserMetadata, quantity_value
from .network import NetworkSpec

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class SecretKeyRef(Spec):
    name: DnsSubdomain
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$")


class EnvVar(Spec):
    name: str = Field(pattern=_ENV_NAME)
    value: str | None = None
    secret_key_ref: SecretKeyRef | None = None
    """Credentials come from a Secret, never as a literal value."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if (self.value is None) == (self.secret_key_ref is None):
            raise ValueError("set exactly one of value or secretKeyRef")
        return self


class ContainerSpec(Spec):
    """The sandbox container: shared by `templates` entries and inline pod runtimes."""

    image: Image
    command: list[str] = []
    args: list[str] = []
    port: int = Field(default=8888, ge=1, le=65535)
    """The agent's port (AG-UI / agent API), reachable only as the network policy allows."""
    readiness_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
    """HTTP path on the agent port that the kubelet probes (every second) before the sandbox
    counts as Ready, e.g. /healthz; unset: Ready as soon as the container runs. A warm pool
    is only as warm as this says: without it a claim may get a sandbox still starting up."""
    env: list[EnvVar] = []
    resources: Resources
    trust: Literal["untrusted", "trusted"] = "untrusted"
    """Untrusted code runs AI-generated commands: stacks may demand a sandboxing runtime."""
    runtime_class_name: DnsSubdomain | None = None
    """e.g. gvisor or kata: a kernel boundary between the sandbox and the node."""
    run_as_user: int | None = Field(default=65532, ge=1, le=2**31 - 1)
    """uid (and gid, fsGroup) of the sandbox. null: the image's own USER, which must then be
    non-root: runAsNonRoot stays on, so the kubelet refuses to start an image that would run
    as root (CreateContainerConfigError) or whose USER is a name it cannot check."""
    read_only_root_filesystem: bool = True
    scratch_size: Quantity = "1Gi"
    """Size of the writable emptyDir mounted at /tmp (the root filesystem is read-only)."""
    env_vars_injection_policy: Literal["Disallowed", "Allowed", "Overrides"] = "Disallowed"

    @property
    def gpu_resources(self) -> dict[str, str]:
        """Extended resources that are GPUs (nvidia.com/gpu, amd.com/gpu, ...)."""
        merged = {**self.resources.requests, **self.resources.limits}
        return {k: str(v) for k, v in merged.items() if "gpu" in k}

    @model_validator(mode="after")
    def _gpus_are_whole_and_limited(self) -> ContainerSpec:
        for name, amount in self.gpu_resources.items():
            if name not in self.resources.limits:
                raise ValueError(f"GPU resource {name} must be set in resources.limits")
            if quantity_value(amount) % 1 != 0:
                raise ValueError(f"GPU resource {name} must be a whole number, got {amount}")
        return self


class _TemplateIdentity(Spec):
    name: DnsLabel
    tenant: DnsLabel
    """Tenant (namespace) the template, and the pools and claims using it, live in."""


# Base order puts name and tenant first in the model's keys (and so in error messages).
class TemplateSpec(ContainerSpec, _TemplateIdentity):
    network: NetworkSpec = NetworkSpec()
    labels: UserLabels = {}
    annotations: UserMetadata = {}
