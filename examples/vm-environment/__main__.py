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
from components.specs.cluster import ClusterSpec
from components.specs.kubevirt import KubeVirtSpec
from components.specs.runtime import RuntimeSpec
from components.specs.secrets import SecretValue
from components.specs.tenant import TenantSpec

config = pulumi.Config()
team = config.get("team") or "vm-agents"
wait = config.get_bool("waitForWorkloads") is not False

cluster = ClusterSpec(name=pulumi.get_stack(), environment="dev", wait_for_workloads=wait)
kubevirt = KubeVirt("kubevirt", KubeVirtArgs(cluster, KubeVirtSpec(use_emulation=config.get_bool("useEmulation") is True)))
tenant = Tenant(team, TenantArgs(TenantSpec(name=team)))

devbox = RuntimeSpec.model_validate({
    "id": "devbox",
    "executionKind": "kubevirt-vm",
    "tenant": team,
    "vmConfig": {
        "containerDiskImage": "quay.io/containerdisks/fedora:40",
        "cpu": 2,
        "memory": "2Gi",
        # A stack secret: the component hands it to Pulumi only as a secret (encrypted in
        # state, masked in output) and to the VM only through a Secret.
        "cloudInitTemplate": SecretValue(config.require("cloudInit")),
    },
    "warm": {"replicas": 1},
})
vms = VmEnvironment("devbox", VmEnvironmentArgs(devbox, workload_depends_on=tuple(kubevirt.ready)),
                    pulumi.ResourceOptions(depends_on=[tenant]))

pulumi.export("namespace", vms.namespace)
pulumi.export("service", vms.service)
pulumi.export("kind", vms.kind)
pulumi.export("kubevirtVersion", kubevirt.version)
