"""AgentSandbox component: CRDs, namespace, RBAC, Services and the controller, or, for a
release someone else installed, a check that its CRDs are registered."""

# No `from __future__ import annotations` in the component modules: Pulumi's component
# provider reads the args classes' annotations as types (see components/__init__.py).
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import get_root_resource

from .k8s import as_spec, dependencies, metadata, place
from .manifests.agent_sandbox import NAMESPACE, build_agent_sandbox
from .prerequisites import RequiredCrds, RequiredCrdsArgs, agent_sandbox_crd_names
from .specs.agent_sandbox import AgentSandboxSpec
from .upstream import UpstreamLoader


@dataclass
class AgentSandboxArgs:
    spec: AgentSandboxSpec | dict[str, Any] = field(default_factory=AgentSandboxSpec)
    """Which release and how (`agentSandbox` in docs/config.md: `version`, `install`,
    `controller`), as an `AgentSandboxSpec` or a mapping of those keys; default: the pinned
    release, installed by this component. `install: external` installs nothing and checks
    that the release's CRDs are registered; `none` does neither."""
    wait_for_workloads: bool = True
    """Let `pulumi up` wait until the controller is ready. Off only where no kubelet runs pods."""
    loader: UpstreamLoader | None = None
    """Where the release's manifests come from; default: the mirror in `UPSTREAM_DIR`, else a
    download checked against the pinned sha256."""


class AgentSandbox(pulumi.ComponentResource):
    """Installs the pinned agent-sandbox release with extensions enabled.

    Pass it to the templates (`SandboxTemplateArgs.install`): they then wait for the CRDs
    and the controller Deployment (which serves the v0.5.6 conversion webhook) and are
    written in the API version the release serves. CRDs are retained on delete: deleting a
    CRD deletes every sandbox of that kind.
    """

    namespace: pulumi.Output[str]
    """The controller's namespace (`agent-sandbox-system`)."""
    version: pulumi.Output[str]
    """The release, e.g. `v0.5.6`."""
    api_version: pulumi.Output[str]
    """The API version templates, pools and claims are written in (`v1beta1` from v0.5)."""

    def __init__(self, name: str, args: AgentSandboxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:AgentSandbox", name, None, opts)
        self._spec = spec = as_spec(AgentSandboxSpec, args.spec, f"AgentSandbox {name!r}")
        after = dependencies(opts)
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        if spec.install == "managed":
            manifests = build_agent_sandbox(spec, args.wait_for_workloads, args.loader or UpstreamLoader())
            created = place(self, manifests, after)
            # Resolves once the namespace exists, so that whatever uses it waits for it.
            self.namespace = next(metadata(r) for m, r in zip(manifests, created, strict=True) if m["kind"] == "Namespace")
        elif spec.install == "external":
            # Before the component took this over, the check was a top-level component of the
            # same name: the alias keeps its lookups in users' state.
            RequiredCrds(f"{name}-crds", RequiredCrdsArgs(agent_sandbox_crd_names(), "agent-sandbox"),
                         pulumi.ResourceOptions(parent=self, depends_on=after,
                                                aliases=[pulumi.Alias(parent=get_root_resource())]))
        self.version = pulumi.Output.from_input(spec.version)
        self.api_version = pulumi.Output.from_input(spec.api_version)
        self.register_outputs({"namespace": self.namespace, "version": self.version, "apiVersion": self.api_version})
