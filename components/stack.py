"""Compose a whole stack from its spec: provider, installs, tenants, runtimes, catalogue."""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

from .admission import AdmissionPolicies, AdmissionPoliciesArgs
from .agent_sandbox import AgentSandbox, AgentSandboxArgs
from .catalogue import RuntimeCatalogue, RuntimeCatalogueArgs
from .errors import ConfigError
from .kubevirt import KubeVirt, KubeVirtArgs
from .monitoring import Monitoring, MonitoringArgs
from .prerequisites import CDI, PROMETHEUS_OPERATOR, RequiredCrds, RequiredCrdsArgs, required_crds
from .sandbox_template import SandboxTemplate, SandboxTemplateArgs
from .specs.secrets import SecretValue
from .specs.stack import StackSpec
from .tenant import Tenant, TenantArgs
from .upstream import UpstreamLoader
from .vm_environment import VmEnvironment, VmEnvironmentArgs
from .warm_pool import WarmPool, WarmPoolArgs


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
    opts = pulumi.ResourceOptions(providers={"kubernetes": provider(spec)})

    def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(resources)))

    # What others install is looked up before anything that needs it is created. Render-only
    # stacks have no cluster to look in (the provider cannot read one): whoever applies the
    # rendered YAML checks the cluster it goes to (`sandbox-infra doctor`).
    external = {} if spec.cluster.provider.render_yaml_to_directory else required_crds(spec)
    sandbox_ready: list[pulumi.Resource] = []
    if spec.agent_sandbox.install == "managed":
        sandbox_ready = AgentSandbox("agent-sandbox", AgentSandboxArgs(spec.cluster, spec.agent_sandbox, loader), opts).ready
    elif "agent-sandbox" in external:
        sandbox_ready = RequiredCrds(
            "agent-sandbox-crds",
            RequiredCrdsArgs(external["agent-sandbox"], "agent-sandbox", cluster=spec.cluster.provider,
                             config_key="sandbox-infra:agentSandbox.install"),
            opts,
        ).ready
    kubevirt = (KubeVirt("kubevirt", KubeVirtArgs(spec.cluster, spec.kubevirt, loader), opts)
                if spec.kubevirt is not None else None)

    api_version = spec.agent_sandbox.api_version
    tenants = {t.name: Tenant(t.name, TenantArgs(t), opts) for t in spec.tenants}
    templates = {
        t.name: SandboxTemplate(t.name, SandboxTemplateArgs(t, api_version),
                                after(*sandbox_ready, tenants[t.tenant].namespace_resource))
        for t in spec.all_templates()
    }
    # The pools' readiness waits read the cluster the provider writes to.
    kubeconfig = _kubeconfig(spec.cluster.provider.kubeconfig)
    keda_ready = RequiredCrds("keda-crds", RequiredCrdsArgs(external["KEDA"], "KEDA"), opts).ready if "KEDA" in external else []
    for pool in spec.all_warm_pools():
        template = spec.template(pool.template)
        args = WarmPoolArgs(pool, template, api_version, spec.cluster.wait_for_workloads,
                            kubeconfig=kubeconfig, context=spec.cluster.provider.context,
                            autoscaler_depends_on=tuple(keda_ready) if pool.autoscaler_engine == "keda" else ())
        WarmPool(pool.name, args, after(*sandbox_ready, tenants[template.tenant].namespace_resource,
                                        templates[template.name].template))

    vm_runtimes = spec.vm_runtimes()
    vm_ready = kubevirt.ready if kubevirt is not None else []
    if CDI in external:  # DataVolumes (VM disks)
        vm_ready = [*vm_ready, *RequiredCrds("cdi-crds", RequiredCrdsArgs(external[CDI], CDI), opts).ready]
    for runtime in vm_runtimes:
        if runtime.tenant not in tenants:  # spec validation rules this out; never a traceback under the engine
            raise ConfigError(f"sandbox-infra:runtimes: runtime {runtime.id!r} names no tenant of this stack")
        VmEnvironment(runtime.id, VmEnvironmentArgs(runtime, tuple(vm_ready)), after(tenants[runtime.tenant].namespace_resource))
    if spec.runtimes:
        catalogue_tenant = tenants.get(spec.catalogue.namespace)
        RuntimeCatalogue(spec.catalogue.name, RuntimeCatalogueArgs(spec),
                         after(catalogue_tenant.namespace_resource) if catalogue_tenant else opts)
    if spec.policy.admission != "off":
        AdmissionPolicies("admission", AdmissionPoliciesArgs(spec, kubevirt.namespace if kubevirt is not None else None),
                          opts)
    if spec.monitoring.enabled:
        monitoring_crds = (RequiredCrds("prometheus-operator-crds",
                                        RequiredCrdsArgs(external[PROMETHEUS_OPERATOR], PROMETHEUS_OPERATOR), opts).ready
                           if PROMETHEUS_OPERATOR in external else [])
        Monitoring("monitoring", MonitoringArgs(spec, tuple(monitoring_crds)), after(*sandbox_ready))

    for warning in loader.warnings:
        pulumi.log.warn(warning)
    pulumi.export("agentSandboxVersion", spec.agent_sandbox.version)
    pulumi.export("kubevirtVersion", spec.kubevirt.version if spec.kubevirt else None)
    pulumi.export("templates", sorted(templates))
    pulumi.export("warmPools", {p.name: p.replicas for p in spec.all_warm_pools()})
    pulumi.export("runtimes", {r.id: r.execution_kind for r in spec.runtimes})
