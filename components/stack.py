"""Compose a whole stack from its spec: provider, install, tenants, templates, pools."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .agent_sandbox import AgentSandbox
from .sandbox_template import SandboxTemplate
from .specs.stack import StackSpec
from .tenant import Tenant
from .upstream import UpstreamLoader
from .warm_pool import WarmPool


def provider(spec: StackSpec) -> k8s.Provider:
    settings = spec.cluster.provider
    return k8s.Provider(
        spec.cluster.name,
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        render_yaml_to_directory=settings.render_yaml_to_directory,
        enable_server_side_apply=True,
    )


def deploy(spec: StackSpec, loader: UpstreamLoader) -> None:
    opts = pulumi.ResourceOptions(providers={"kubernetes": provider(spec)})
    install = AgentSandbox("agent-sandbox", spec.agent_sandbox, spec.cluster, loader, opts)
    api_version = spec.agent_sandbox.api_version
    tenants = {t.name: Tenant(t, opts) for t in spec.tenants}
    templates = {
        t.name: SandboxTemplate(t, api_version, [*install.ready, tenants[t.tenant].namespace], opts)
        for t in spec.templates
    }
    for pool in spec.warm_pools:
        template = spec.template(pool.template)
        WarmPool(pool, template, api_version, spec.cluster.wait_for_workloads,
                 [*install.ready, tenants[template.tenant].namespace, templates[template.name].template], opts)
    pulumi.export("agentSandboxVersion", spec.agent_sandbox.version)
    pulumi.export("templates", sorted(templates))
    pulumi.export("warmPools", {p.name: p.replicas for p in spec.warm_pools})
