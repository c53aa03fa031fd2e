"""SandboxTemplate component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import api_version, dependencies, kubernetes_resource, metadata
from .manifests.sandbox_template import build_sandbox_template
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
    """A SandboxTemplate in the tenant namespace `spec.tenant`. Make it depend on the
    agent-sandbox install and the tenant (`opts.depends_on`)."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    """Group/version of the template, for references from pools and claims."""

    def __init__(self, name: str, args: SandboxTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:SandboxTemplate", name, None, opts)
        manifest = build_sandbox_template(args.spec, args.api_version)
        self.template = kubernetes_resource(manifest, pulumi.ResourceOptions(parent=self, depends_on=dependencies(opts)))
        self.name = metadata(self.template)
        self.namespace = metadata(self.template, "namespace")
        self.api_version = api_version(self.template, manifest)
        self.register_outputs({"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version})
