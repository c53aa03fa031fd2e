"""Bring-your-own installs: check that the CRDs the stack's custom resources need are
registered in the cluster before any of those resources is created.

Two checks, like kagent's `EnsureAgentSandboxAPIsRegistered`:

- Before anything is registered, the program asks the cluster the provider will talk to
  (same kubeconfig and context) for the CRDs, and stops with one sentence naming every
  missing one: nothing is planned or applied. Where the program cannot ask (render-only
  mode, a sealed kubeconfig, no right to read CRDs, the cluster unreachable), it leaves
  the answer to the second check.
- Each CRD is read with `CustomResourceDefinition.get`, a real lookup through the
  stack's Kubernetes provider (under test mocks, the mock answers it). Custom
  resources depend on these reads, so a missing CRD stops the preview or update at
  the read, whose error names that CRD (`resource '<crd name>' does not exist`),
  before anything that needs it is sent to the cluster. The engine reports each read
  on its own, with the program's cancellation around it: hence the first check.
"""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_monitor

from .errors import ConfigError
from .k8s import dependencies
from .manifests.graph import (  # noqa: F401  (re-exported: doctor and the tests read them here)
    CDI,
    KUBEVIRT_CRDS,
    PROMETHEUS_OPERATOR,
    agent_sandbox_crd_names,
    required_crds,
)
from .specs.cluster import KubernetesProvider
from .specs.secrets import SecretValue


class MissingApis(ConfigError):
    """The cluster lacks CRDs this stack needs from a bring-your-own install."""


def _cluster_client(settings: KubernetesProvider) -> Any:
    """An API client for the cluster the stack's provider talks to, or None when this process
    cannot build one (the provider's own reads then decide)."""
    from kubernetes import config  # only bring-your-own stacks pay for this import

    if settings.render_yaml_to_directory or isinstance(get_monitor(), MockMonitor):
        return None  # no cluster to ask: render-only, or test mocks (their engine reads answer)
    try:
        if isinstance(settings.kubeconfig, SecretValue):
            if settings.kubeconfig.sealed:
                return None
            return config.new_client_from_config_dict(yaml.safe_load(settings.kubeconfig.reveal()),
                                                      context=settings.context)
        path = os.path.expanduser(settings.kubeconfig) if settings.kubeconfig else None
        return config.new_client_from_config(config_file=path, context=settings.context)
    except Exception:  # no or unreadable kubeconfig, unknown context: the provider says what is wrong
        return None


def missing_crds(settings: KubernetesProvider, names: Sequence[str]) -> list[str] | None:
    """Which of `names` the cluster does not serve; None when that cannot be asked from here."""
    from kubernetes import client

    api_client = _cluster_client(settings)
    if api_client is None:
        return None
    missing = []
    with api_client:
        crds = client.ApiextensionsV1Api(api_client)
        for name in names:
            try:  # raw response: the CRD's schema is not needed, only whether it is there
                crds.read_custom_resource_definition(name, _preload_content=False, _request_timeout=15)
            except client.ApiException as error:
                if error.status != 404:
                    return None  # e.g. 403, not allowed to read CRDs: cannot tell
                missing.append(name)
            except Exception:  # unreachable: the provider reports the connection problem
                return None
    return missing


def ensure_registered(settings: KubernetesProvider, names: Sequence[str], installed_by: str, config_key: str) -> None:
    """Raise MissingApis, one sentence naming every missing CRD, when the cluster lacks any."""
    missing = missing_crds(settings, names)
    if missing:
        raise MissingApis(
            f"{config_key} is 'external', but the cluster does not serve the {installed_by} API"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: install {installed_by} first (or set "
            f"{config_key}: managed); nothing was applied"
        )


@dataclass
class RequiredCrdsArgs:
    crds: list[str]
    """CRD names (`<plural>.<group>`) that must be registered."""
    installed_by: str
    """Who installs them, for the messages (`agent-sandbox`, `KubeVirt`, `KEDA`)."""


class RequiredCrds(pulumi.ComponentResource):
    """Reads each named CRD from the cluster. Make what needs them depend on it
    (`opts.depends_on`): a missing CRD then stops the update at its read, before anything
    that needs it is sent."""

    crds: pulumi.Output[list[str]]
    """The CRD names looked up."""

    def __init__(self, name: str, args: RequiredCrdsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        names = sorted(set(args.crds))
        super().__init__("sandbox-infra:index:RequiredCrds", name, None, opts)
        pulumi.log.info(
            f"{args.installed_by} is not managed by this stack: checking that its CRDs are registered: {', '.join(names)}",
            resource=self,
        )
        lookup = pulumi.ResourceOptions(parent=self, depends_on=dependencies(opts))
        for crd in names:
            k8s.apiextensions.v1.CustomResourceDefinition.get(f"{name}/{crd}", crd, opts=lookup)
        self.crds = pulumi.Output.from_input(names)
        self.register_outputs({"crds": self.crds})
