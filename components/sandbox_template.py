"""SandboxTemplate component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import api_version, dependencies, kubernetes_resource, metadata
from .manifests.sandbox_template import build_cilium_network_policy, build_sandbox_template
from .specs.agent_sandbox import AgentSandboxSpec
from .specs.template import TemplateSpec


@dataclass(frozen=True)
class SandboxTemplateArgs:
    spec: TemplateSpec
    """The template (`templates[]` in docs/config.md): image, resources, network allowlist,
    runtime class, trust. The pod it renders is hardened whatever the spec says: non-root,
    read-only root filesystem, all capabilities dropped, RuntimeDefault seccomp, no
    service-account token, and a managed default-deny NetworkPolicy unless `network` opens it."""
    api_version: str = AgentSandboxSpec().api_version
    """The agent-sandbox API version to write (`v1beta1` from v0.5, `v1alpha1` before): the
    one the installed release serves (`AgentSandboxSpec(version=...).api_version`); default:
    that of the release this project pins."""


class SandboxTemplate(pulumi.ComponentResource):
    """A SandboxTemplate in the tenant namespace `spec.tenant`, and, for a template whose egress
    Cilium enforces (`network.externalEnforcer: cilium`), its CiliumNetworkPolicy. Make it
    depend on the agent-sandbox install and the tenant (`opts.depends_on`)."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    """Group/version of the template, for references from pools and claims."""

    def __init__(self, name: str, args: SandboxTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:SandboxTemplate", name, None, opts)
        manifest = build_sandbox_template(args.spec, args.api_version)
        policy = build_cilium_network_policy(args.spec)
        after = dependencies(opts)
        # The template's network policy first: no sandbox of it starts before its egress is enforced.
        self.network_policy = None if policy is None else kubernetes_resource(
            policy, pulumi.ResourceOptions(parent=self, depends_on=after))
        enforced = [self.network_policy] if self.network_policy is not None else []
        self.template = kubernetes_resource(manifest, pulumi.ResourceOptions(parent=self, depends_on=[*after, *enforced]))
        self.name = metadata(self.template)
        self.namespace = metadata(self.template, "namespace")
        self.api_version = api_version(self.template, manifest)
        self.register_outputs({"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version})
