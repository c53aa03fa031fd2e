"""SandboxTemplate component."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Any

import pulumi

from .agent_sandbox import AgentSandbox
from .k8s import as_spec, dependencies, metadata, one_of, place
from .manifests.sandbox_template import build_cilium_network_policy, build_sandbox_template
from .specs.template import TemplateSpec
from .tenant import Tenant


@dataclass
class SandboxTemplateArgs:
    spec: TemplateSpec | dict[str, Any]
    """The template (`templates[]` in docs/config.md), as a `TemplateSpec` or a mapping of its
    keys: image, resources, network allowlist, runtime class, trust (`tenant` may be left out:
    it is the tenant passed). The pod it renders is hardened whatever the spec says: non-root,
    read-only root filesystem, all capabilities dropped, RuntimeDefault seccomp, no
    service-account token, and a managed default-deny NetworkPolicy unless `network` opens it."""
    install: AgentSandbox
    """The agent-sandbox install: the template is written in the API version its release
    serves, and waits for its CRDs and controller."""
    tenant: Tenant
    """The tenant whose namespace the template lives in; it waits for the tenant."""


class SandboxTemplate(pulumi.ComponentResource):
    """A SandboxTemplate in the tenant's namespace, and, for a template whose egress Cilium
    enforces (`network.externalEnforcer: cilium`), its CiliumNetworkPolicy (created first: no
    sandbox of the template starts before its egress is enforced). Pass it to its warm pools."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    """Group/version of the template, for references from pools and claims."""

    def __init__(self, name: str, args: SandboxTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:SandboxTemplate", name, None, opts)
        where = f"SandboxTemplate {name!r}"
        tenant = args.tenant._spec.name
        self._spec = spec = as_spec(TemplateSpec, args.spec, where, tenant=tenant)
        one_of(spec.tenant, tenant, where, "tenant")
        self._install = args.install._spec
        self._needs = [args.install, args.tenant]  # what its pools wait for too
        manifest = build_sandbox_template(spec, self._install.api_version)
        policy = build_cilium_network_policy(spec)
        created = place(self, [manifest, *([policy] if policy else [])], [*dependencies(opts), *self._needs])
        self.name = metadata(created[0])
        self.namespace = metadata(created[0], "namespace")
        self.api_version = created[0].metadata.apply(lambda _: manifest["apiVersion"])  # type: ignore[attr-defined]
        self.register_outputs({"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version})
