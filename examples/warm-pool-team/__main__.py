"""A warm pool for one team, from the components alone (no sandbox-infra stack config).

agent-sandbox installed and pinned, the team's tenant namespace (Pod Security restricted,
quota, default-deny, a claimer Role for its gateway), one hardened SandboxTemplate and a
pool of pre-warmed sandboxes claimed in about 0.1 s. Uses the ambient Kubernetes provider
(KUBECONFIG / current context).

    pulumi config set image registry.example.com/team/python:3.12   # a pinned image you trust
    pulumi up
"""

import pulumi

from components import (
    AgentSandbox,
    AgentSandboxArgs,
    SandboxTemplate,
    SandboxTemplateArgs,
    Tenant,
    TenantArgs,
    WarmPool,
    WarmPoolArgs,
)
from components.specs.cluster import ClusterSpec
from components.specs.template import TemplateSpec
from components.specs.tenant import TenantSpec
from components.specs.warm_pool import WarmPoolSpec

config = pulumi.Config()
team = config.get("team") or "team-a"
# Off only on a control plane without kubelets (the e2e tests); a real cluster waits.
wait = config.get_bool("waitForWorkloads") is not False

cluster = ClusterSpec(name=pulumi.get_stack(), environment="dev", wait_for_workloads=wait)
install = AgentSandbox("agent-sandbox", AgentSandboxArgs(cluster))

tenant = Tenant(team, TenantArgs(TenantSpec.model_validate({
    "name": team,
    "gatewayServiceAccounts": [{"name": "gateway", "namespace": "gateway"}],
})))

template_spec = TemplateSpec.model_validate({
    "name": "python",
    "tenant": team,
    "image": config.get("image") or "registry.example.com/sandboxes/python:3.12",
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
})
template = SandboxTemplate("python", SandboxTemplateArgs(template_spec, install.api_version),
                           pulumi.ResourceOptions(depends_on=[install, tenant]))

pool = WarmPool(
    "python",
    WarmPoolArgs(WarmPoolSpec.model_validate({"name": "python", "template": "python",
                                              "replicas": config.get_int("replicas") or 3}),
                 template_spec, install.api_version, wait_for_workloads=wait),
    pulumi.ResourceOptions(depends_on=[install, template]),
)

pulumi.export("namespace", tenant.namespace)
pulumi.export("claimerRole", tenant.claimer_role)
pulumi.export("template", template.name)
pulumi.export("warmPool", pool.name)
pulumi.export("apiVersion", pool.api_version)
