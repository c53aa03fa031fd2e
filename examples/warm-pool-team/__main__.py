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
from components.specs import Resources, ServiceAccountRef, TemplateSpec, TenantSpec, WarmPoolSpec

config = pulumi.Config()
team = config.get("team") or "team-a"
# Off only on a control plane without kubelets (the e2e tests); a real cluster waits.
wait = config.get_bool("waitForWorkloads") is not False

install = AgentSandbox("agent-sandbox", AgentSandboxArgs(wait_for_workloads=wait))

tenant = Tenant(team, TenantArgs(spec=TenantSpec(
    name=team,
    gateway_service_accounts=[ServiceAccountRef(name="gateway", namespace="gateway")],
)))

# The template is written in the API version the install serves, in the tenant's namespace,
# and waits for both: passing them is all the wiring there is.
template = SandboxTemplate("python", SandboxTemplateArgs(
    spec=TemplateSpec(
        name="python",
        tenant=team,
        image=config.get("image") or "registry.example.com/sandboxes/python:3.12",
        resources=Resources(requests={"cpu": "250m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}),
    ),
    install=install,
    tenant=tenant,
))

pool = WarmPool("python", WarmPoolArgs(
    spec=WarmPoolSpec(name="python", template="python", replicas=config.get_int("replicas") or 3),
    template=template,
    wait_for_workloads=wait,
))

pulumi.export("namespace", tenant.namespace)
pulumi.export("claimerRole", tenant.claimer_role)
pulumi.export("template", template.name)
pulumi.export("warmPool", pool.name)
pulumi.export("apiVersion", pool.api_version)
