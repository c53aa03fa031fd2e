"""Which cluster a stack targets and how Pulumi talks to it."""

from __future__ import annotations

from pydantic import model_validator
from sandbox_policy.vocabulary import Environment

from .base import DnsLabel, Spec
from .secrets import Kubeconfig


class KubernetesProvider(Spec):
    """Settings for the explicit pulumi-kubernetes provider of the stack.

    With none of the fields set, the provider uses the ambient kubeconfig
    (`KUBECONFIG` or `~/.kube/config`) and its current context.
    """

    kubeconfig: Kubeconfig | None = None
    """Path to a kubeconfig file, or its contents as a Pulumi secret (never in plain text)."""
    context: str | None = None
    """kubeconfig context to use instead of the current one."""
    render_yaml_to_directory: str | None = None
    """Render-only mode: pulumi-kubernetes writes manifests here instead of applying them."""


class ClusterSpec(Spec):
    name: DnsLabel
    environment: Environment
    provider: KubernetesProvider = KubernetesProvider()
    wait_for_workloads: bool = True
    """Wait for Deployments and warm pools to become ready. Turn off on control planes
    without nodes (no kubelet runs the pods), never on a real cluster."""

    @model_validator(mode="after")
    def _render_only_is_exclusive(self) -> ClusterSpec:
        if self.provider.render_yaml_to_directory and self.wait_for_workloads:
            raise ValueError(
                "provider.renderYamlToDirectory renders manifests without a cluster, so nothing can "
                "become ready: set waitForWorkloads: false as well"
            )
        return self
