"""A VM environment, from the components alone (no sandbox-infra stack config).

The KubeVirt operator and its KubeVirt CR (vetted feature gates only; software emulation
off unless asked for), a tenant namespace, and one pool of VMs behind a Service, booted
with a cloud-init that reaches the cluster only as a Secret.

    pulumi config set --secret cloudInit "$(cat cloud-init.yaml)"
    pulumi config set useEmulation true     # only on clusters without /dev/kvm (dev, CI)
    pulumi up
"""

import pulumi

from components import KubeVirt, KubeVirtArgs, Tenant, TenantArgs, VmEnvironment, VmEnvironmentArgs
from components.specs import KubeVirtSpec, RuntimeSpec, SecretValue, TenantSpec, VmConfig, WarmSpec

config = pulumi.Config()
team = config.get("team") or "vm-agents"
wait = config.get_bool("waitForWorkloads") is not False

kubevirt = KubeVirt("kubevirt", KubeVirtArgs(
    spec=KubeVirtSpec(use_emulation=config.get_bool("useEmulation") is True),
    wait_for_workloads=wait,
))
tenant = Tenant(team, TenantArgs(spec=TenantSpec(name=team)))

# The VMs live in the tenant's namespace and boot once KubeVirt is Available: passing both
# is all the wiring there is.
vms = VmEnvironment("devbox", VmEnvironmentArgs(
    spec=RuntimeSpec(
        id="devbox",
        execution_kind="kubevirt-vm",
        tenant=team,
        vm_config=VmConfig(
            container_disk_image="quay.io/containerdisks/fedora:40",
            cpu=2,
            memory="2Gi",
            # A stack secret: the component hands it to Pulumi only as a secret (encrypted in
            # state, masked in output) and to the VM only through a Secret.
            cloud_init_template=SecretValue(config.require("cloudInit")),
        ),
        warm=WarmSpec(replicas=1),
    ),
    tenant=tenant,
    kubevirt=kubevirt,
))

pulumi.export("namespace", vms.namespace)
pulumi.export("service", vms.service)
pulumi.export("kind", vms.kind)
pulumi.export("kubevirtVersion", kubevirt.version)
