"""Compose a whole stack from its spec: provider, installs, tenants, runtimes, catalogue."""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

from . import (
    admission,
    agent_sandbox,
    catalogue,
    kubevirt,
    monitoring,
    prerequisites,
    sandbox_template,
    tenant,
    vm_environment,
    warm_pool,
)
from .errors import ConfigError
from .manifests.graph import stack_graph
from .prerequisites import ensure_registered
from .specs.secrets import SecretValue
from .specs.stack import StackSpec
from .upstream import UpstreamLoader

# Where each component of the graph is defined.
_MODULES = {
    "AgentSandbox": agent_sandbox, "KubeVirt": kubevirt, "Tenant": tenant, "SandboxTemplate": sandbox_template,
    "WarmPool": warm_pool, "VmEnvironment": vm_environment, "RuntimeCatalogue": catalogue,
    "AdmissionPolicies": admission, "Monitoring": monitoring, "RequiredCrds": prerequisites,
}


def _kubeconfig(value: str | SecretValue | None) -> pulumi.Input[str] | None:
    """Contents only as a Pulumi secret (encrypted in state, masked in logs); a path with
    `~` expanded, as the docs' `~/.kube/config` example promises."""
    if isinstance(value, SecretValue):
        if value.sealed:
            raise ConfigError("sandbox-infra:cluster.provider.kubeconfig: is a 'secure:' value the Pulumi engine did "
                              "not decrypt; set it in the stack file with `pulumi config set --secret --path "
                              "'cluster.provider.kubeconfig' < kubeconfig`")
        return pulumi.Output.secret(value.reveal())
    return os.path.expanduser(value) if value is not None else None


# ConfigMaps and Secrets are updated in place. pulumi-kubernetes otherwise replaces one on
# any data change, which for our fixed names means delete, then create: the runtime
# catalogue that gateways read would vanish for a moment on every agent-sandbox upgrade,
# a VM's cloud-init Secret on every key rotation. (Replacing only helps autonamed objects
# roll their pods, and none of ours is autonamed.)
PROVIDER_SETTINGS = {"enable_server_side_apply": True, "enable_config_map_mutable": True, "enable_secret_mutable": True}


def provider(spec: StackSpec) -> k8s.Provider:
    settings = spec.cluster.provider
    if settings.render_yaml_to_directory:
        # Render-only: nothing is read from or applied to a cluster, so no credentials are
        # passed (the provider refuses them next to renderYamlToDirectory, and a context the
        # rendering machine lacks). kubeconfig="" keeps the SDK from filling in $KUBECONFIG.
        return k8s.Provider(spec.cluster.name, kubeconfig="",
                            render_yaml_to_directory=settings.render_yaml_to_directory, **PROVIDER_SETTINGS)
    return k8s.Provider(spec.cluster.name, kubeconfig=_kubeconfig(settings.kubeconfig), context=settings.context,
                        **PROVIDER_SETTINGS)


def deploy(spec: StackSpec, loader: UpstreamLoader) -> None:
    """Create the stack's graph (manifests/graph.py: the one the offline render lists), each
    part as its component through the public API: `Component(name, Args(...), opts)`, with the
    components it names passed as components and what it waits for in `opts.depends_on`."""
    opts = pulumi.ResourceOptions(providers={"kubernetes": provider(spec)})
    # Render-only stacks have no cluster to look in (the provider cannot read one): whoever
    # applies the rendered YAML checks the cluster it goes to (`sandbox-infra doctor`).
    lookups = not spec.cluster.provider.render_yaml_to_directory
    if lookups and spec.agent_sandbox.install == "external":
        # Ask the cluster before anything is registered: one sentence naming every missing CRD.
        ensure_registered(spec.cluster.provider, prerequisites.agent_sandbox_crd_names(), "agent-sandbox",
                          "sandbox-infra:agentSandbox.install")
    # The pools' readiness waits read the cluster the provider writes to.
    pool_access = ({"kubeconfig": _kubeconfig(spec.cluster.provider.kubeconfig), "context": spec.cluster.provider.context}
                   if lookups else {})
    created: dict[str, pulumi.ComponentResource] = {}
    for part in stack_graph(spec, loader, lookups):
        module = _MODULES[part.component]
        component, args = getattr(module, part.component), getattr(module, f"{part.component}Args")
        refs = {field: created[key] for field, key in part.refs.items()}
        refs |= {field: [created[key] for key in keys] for field, keys in part.list_refs.items()}
        needs = pulumi.ResourceOptions(depends_on=[created[key] for key in part.needs])
        extra = pool_access if part.component == "WarmPool" else {}
        created[part.key] = component(part.name, args(**part.args, **refs, **extra),
                                      pulumi.ResourceOptions.merge(opts, needs))

    for warning in loader.warnings:
        pulumi.log.warn(warning)
    pulumi.export("agentSandboxVersion", spec.agent_sandbox.version)
    pulumi.export("kubevirtVersion", spec.kubevirt.version if spec.kubevirt else None)
    pulumi.export("templates", sorted(t.name for t in spec.all_templates()))
    pulumi.export("warmPools", {p.name: p.replicas for p in spec.all_warm_pools()})
    pulumi.export("runtimes", {r.id: r.execution_kind for r in spec.runtimes})
