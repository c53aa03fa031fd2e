"""Compose a whole stack from its spec: provider, installs, tenants, runtimes, catalogue."""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

from .admission import AdmissionPolicies
from .agent_sandbox import AgentSandbox
from .catalogue import RuntimeCatalogue
from .errors import ConfigError
from .kubevirt import KubeVirt
from .manifests.kubevirt import DATA_VOLUME_CRD
from .manifests.sizing import SCALED_OBJECT_CRD
from .prerequisites import RequiredCrds, agent_sandbox_crd_names
from .sandbox_template import SandboxTemplate
from .specs.secrets import SecretValue
from .specs.stack import StackSpec
from .tenant import Tenant
from .upstream import UpstreamLoader
from .vm_environment import VmEnvironment
from .warm_pool import WarmPool


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
    sandbox_ready: list[pulumi.Resource] = []
    if spec.agent_sandbox.install == "managed":
        sandbox_ready = AgentSandbox("agent-sandbox", spec.agent_sandbox, spec.cluster, loader, opts).ready
    elif spec.agent_sandbox.install == "external":
        sandbox_ready = RequiredCrds("agent-sandbox-crds", agent_sandbox_crd_names(), "agent-sandbox", opts).ready
    kubevirt = KubeVirt("kubevirt", spec.kubevirt, spec.cluster, loader, opts) if spec.kubevirt is not None else None

    api_version = spec.agent_sandbox.api_version
    tenants = {t.name: Tenant(t, opts) for t in spec.tenants}
    templates = {
        t.name: SandboxTemplate(t, api_version, [*sandbox_ready, tenants[t.tenant].namespace], opts)
        for t in spec.all_templates()
    }
    keda_pools = {p.name for p in spec.all_warm_pools() if p.slo and p.slo.autoscaling and p.slo.autoscaling.engine == "keda"}
    # Like a bring-your-own install: look KEDA's CRD up before creating any ScaledObject.
    keda_ready = RequiredCrds("keda-crds", [SCALED_OBJECT_CRD], "KEDA", opts).ready if keda_pools else []
    for pool in spec.all_warm_pools():
        template = spec.template(pool.template)
        WarmPool(pool, template, api_version, spec.cluster.wait_for_workloads,
                 [*sandbox_ready, tenants[template.tenant].namespace, templates[template.name].template], opts,
                 autoscaler_depends_on=keda_ready if pool.name in keda_pools else None)

    vm_runtimes = spec.vm_runtimes()
    vm_ready = kubevirt.ready if kubevirt is not None else []
    # DataVolumes are served by CDI, which neither this stack nor KubeVirt installs.
    if any(r.vm_config and r.vm_config.disks for r in vm_runtimes):
        vm_ready = [*vm_ready, *RequiredCrds("cdi-crds", [DATA_VOLUME_CRD], "CDI (containerized data importer)", opts).ready]
    for runtime in vm_runtimes:
        if runtime.tenant not in tenants:  # spec validation rules this out; never a traceback under the engine
            raise ConfigError(f"sandbox-infra:runtimes: runtime {runtime.id!r} names no tenant of this stack")
        VmEnvironment(runtime, tenants[runtime.tenant].namespace, vm_ready, opts)
    if spec.runtimes:
        RuntimeCatalogue(spec, {name: t.namespace for name, t in tenants.items()}, opts)
    if spec.policy.admission != "off":
        AdmissionPolicies(spec, kubevirt.namespace if kubevirt is not None else None, opts)

    for warning in loader.warnings:
        pulumi.log.warn(warning)
    pulumi.export("agentSandboxVersion", spec.agent_sandbox.version)
    pulumi.export("kubevirtVersion", spec.kubevirt.version if spec.kubevirt else None)
    pulumi.export("templates", sorted(templates))
    pulumi.export("warmPools", {p.name: p.replicas for p in spec.all_warm_pools()})
    pulumi.export("runtimes", {r.id: r.execution_kind for r in spec.runtimes})
