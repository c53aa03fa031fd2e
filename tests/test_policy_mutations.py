"""Mutation test: make every sandbox workload and VM of the shipped stacks insecure, one
mutation class at a time, and require a mandatory rule to catch each change.

A mutation acts on the rendered objects (as a buggy builder, a Pulumi transform or a
hand edit would), so nothing in the config validation stands in the way. It must
produce a new, non-excepted finding of the rule it names; the catch rate over all
applied mutations is printed and must be 100%.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox_policy import Context, check
from sandbox_policy.workloads import SANDBOX_POD_KINDS, VM_KINDS, containers, pod_specs, vmi_specs

from components.manifests.admission import build_admission

from .policy_support import SHIPPED_STACKS, documents, shipped

Objects = list[dict[str, Any]]
VM_EXTENSION = Path(__file__).parent / "policy_fixtures" / "vm-extension.yaml"
ANY_WORKLOAD = SANDBOX_POD_KINDS | VM_KINDS


@dataclass(frozen=True)
class Mutation:
    name: str
    expects: str
    """The rule that must catch it."""
    kinds: frozenset[str]
    apply: Callable[[Objects, int, Context], bool]
    """Mutates the objects around target index; False when the class does not apply here."""


MUTATIONS: list[Mutation] = []


def mutation(name: str, expects: str, kinds: frozenset[str] | set[str]) -> Callable:
    def register(apply: Callable[[Objects, int, Context], bool | None]) -> Callable:
        MUTATIONS.append(Mutation(name, expects, frozenset(kinds), lambda o, i, c: apply(o, i, c) is not False))
        return apply
    return register


# --- accessors ---------------------------------------------------------------------------------

def pod(objects: Objects, i: int) -> dict:
    return pod_specs(objects[i])[0].spec


def container(objects: Objects, i: int) -> dict:
    return containers(pod_specs(objects[i])[0])[-1].container


def security(objects: Objects, i: int) -> dict:
    return container(objects, i).setdefault("securityContext", {})


def vmi(objects: Objects, i: int) -> dict:
    return vmi_specs(objects[i])[0].spec


def namespace_of(objects: Objects, i: int) -> str:
    return objects[i]["metadata"]["namespace"]


def in_namespace(objects: Objects, i: int, kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace_of(objects, i)]


def pools_of(objects: Objects, i: int) -> list[dict]:
    name = objects[i]["metadata"]["name"]
    return [p for p in in_namespace(objects, i, "SandboxWarmPool") if p["spec"]["sandboxTemplateRef"]["name"] == name]


# --- Pod Security Standards ------------------------------------------------------------------------

@mutation("privileged container", "pss-privileged", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["privileged"] = True


for field in ("hostNetwork", "hostPID", "hostIPC"):
    mutation(f"{field}: true", "pss-host-namespaces", SANDBOX_POD_KINDS)(
        lambda o, i, c, field=field: pod(o, i).__setitem__(field, True))


@mutation("hostPath volume", "pss-host-path-volumes", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    pod(o, i).setdefault("volumes", []).append({"name": "host", "hostPath": {"path": "/"}})


@mutation("added SYS_ADMIN capability", "pss-capabilities", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i).setdefault("capabilities", {})["add"] = ["SYS_ADMIN"]


@mutation("capabilities not dropped", "pss-capabilities", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i).pop("capabilities", None)


@mutation("runAsUser 0", "pss-run-as-user", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["runAsUser"] = 0


@mutation("runAsNonRoot false", "pss-run-as-non-root", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["runAsNonRoot"] = False


@mutation("seccomp Unconfined", "pss-seccomp", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["seccompProfile"] = {"type": "Unconfined"}


@mutation("allowPrivilegeEscalation true", "pss-privilege-escalation", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["allowPrivilegeEscalation"] = True


@mutation("hostPort", "pss-host-ports", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i).setdefault("ports", [{"containerPort": 8080}])[0]["hostPort"] = 8080


@mutation("procMount Unmasked", "pss-proc-mount", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["procMount"] = "Unmasked"


@mutation("unsafe sysctl", "pss-sysctls", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    pod(o, i).setdefault("securityContext", {})["sysctls"] = [{"name": "kernel.msgmax", "value": "65536"}]


@mutation("probe host on the node's network", "pss-probe-host", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i)["livenessProbe"] = {"httpGet": {"path": "/", "port": 80, "host": "169.254.169.254"}}


@mutation("lifecycle handler host", "pss-probe-host", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i)["lifecycle"] = {"preStop": {"httpGet": {"path": "/", "port": 10250, "host": "127.0.0.1"}}}


@mutation("AppArmor Unconfined", "pss-apparmor", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["appArmorProfile"] = {"type": "Unconfined"}


@mutation("SELinux spc_t", "pss-selinux", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["seLinuxOptions"] = {"type": "spc_t"}


@mutation("Windows HostProcess", "pss-host-process", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    security(o, i)["windowsOptions"] = {"hostProcess": True}


@mutation("nfs volume", "pss-volume-types", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    pod(o, i).setdefault("volumes", []).append({"name": "nfs", "nfs": {"server": "10.0.0.1", "path": "/"}})


# --- sandbox rules -----------------------------------------------------------------------------------

@mutation("service-account token automount", "sandbox-no-service-account-token", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    pod(o, i)["automountServiceAccountToken"] = True


@mutation("pod certificate projection", "sandbox-no-service-account-token", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    certificate = {"signerName": "example.com/identity", "keyType": "ED25519", "credentialBundlePath": "bundle.pem"}
    pod(o, i).setdefault("volumes", []).append({"name": "identity", "projected": {"sources": [{"podCertificate": certificate}]}})


@mutation("missing limits", "sandbox-resources-set", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i).get("resources", {}).pop("limits", None)


@mutation(":latest image", "workload-image-tag-pinned", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    target = container(o, i)
    target["image"] = target["image"].split("@")[0].rsplit(":", 1)[0] + ":latest"


@mutation("image from an untrusted registry", "sandbox-image-source", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i)["image"] = "docker.io/attacker/agent-runtime:1.0"


@mutation("runtime class removed", "sandbox-runtime-class", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> bool:
    if not c.policy.require_runtime_class:
        return False  # the stack does not require one (dev)
    return pod(o, i).pop("runtimeClassName", None) is not None


@mutation("runtime class runc", "sandbox-runtime-class", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> bool:
    if o[i]["metadata"].get("annotations", {}).get("sandbox-infra.dev/trust") == "trusted":
        return False  # vetted code may run under any runtime
    pod(o, i)["runtimeClassName"] = "runc"
    return True


@mutation("RuntimeClass behind the template runs runc", "sandbox-runtime-class-handler", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> bool:
    name = pod(o, i).get("runtimeClassName")
    if name is None:
        return False  # the template names no runtime class
    o.append({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "runc"})
    return True


@mutation("Unmanaged network policy without enforcer", "sandbox-network-policy", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["networkPolicyManagement"] = "Unmanaged"
    o[i]["metadata"].get("annotations", {}).pop("sandbox-infra.dev/egress-enforcer", None)


def cilium_policies_of(objects: Objects, i: int) -> list[dict]:
    name = objects[i]["metadata"]["name"]
    return [p for p in in_namespace(objects, i, "CiliumNetworkPolicy")
            if p["spec"]["endpointSelector"]["matchLabels"].get("sandbox-infra.dev/template") == name]


@mutation("Cilium policy of an Unmanaged template removed", "sandbox-egress-enforced", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    policies = cilium_policies_of(o, i)
    o[:] = [x for x in o if not any(x is p for p in policies)]
    return bool(policies) and c.environment != "dev"  # dev may leave egress to an enforcer run by hand


@mutation("metadata egress in the Cilium policy", "sandbox-no-metadata-egress", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    for policy in cilium_policies_of(o, i):
        policy["spec"].setdefault("egress", []).append({"toCIDRSet": [{"cidr": "169.254.169.254/32"}]})
    return bool(cilium_policies_of(o, i))


@mutation("metadata egress in the template policy", "sandbox-no-metadata-egress", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["networkPolicyManagement"] = "Managed"
    policy = o[i]["spec"].setdefault("networkPolicy", {})
    policy.setdefault("egress", []).append({"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]})


@mutation("metadata egress through a NetworkPolicy", "sandbox-no-metadata-egress", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> None:
    o.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "allow-internet", "namespace": namespace_of(o, i)},
              "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}})


@mutation("env injection Overrides", "sandbox-env-injection", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    if c.environment != "prod":
        return False  # only prod forbids it
    o[i]["spec"]["envVarsInjectionPolicy"] = "Overrides"
    return True


@mutation("literal credential in env", "workload-env-no-credentials", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    container(o, i).setdefault("env", []).append({"name": "OPENAI_API_KEY", "value": "sk-test-0123456789abcdefghijkl"})


@mutation("reserved label on the pod template", "sandbox-reserved-metadata", SANDBOX_POD_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["podTemplate"].setdefault("metadata", {}).setdefault("labels", {})["agents.x-k8s.io/sandbox-name-hash"] = "x"


@mutation("warm pool above the cap", "sandbox-warm-pool-cap", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    for pool in pools_of(o, i):
        pool["spec"]["replicas"] = c.policy.max_warm_pool_replicas + 1
    return bool(pools_of(o, i))


def autoscalers_of(objects: Objects, i: int) -> list[dict]:
    pools = {p["metadata"]["name"] for p in pools_of(objects, i)}
    return [a for kind in ("HorizontalPodAutoscaler", "ScaledObject") for a in in_namespace(objects, i, kind)
            if a["spec"]["scaleTargetRef"]["kind"] == "SandboxWarmPool" and a["spec"]["scaleTargetRef"]["name"] in pools]


@mutation("pool autoscaler above the cap", "sandbox-warm-pool-cap", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    for autoscaler in autoscalers_of(o, i):
        field = "maxReplicas" if autoscaler["kind"] == "HorizontalPodAutoscaler" else "maxReplicaCount"
        autoscaler["spec"][field] = c.policy.max_warm_pool_replicas + 1
    return bool(autoscalers_of(o, i))


@mutation("KEDA ScaledObject on a pool, default maximum", "sandbox-warm-pool-cap", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    if c.policy.max_warm_pool_replicas >= 100:
        return False  # KEDA's default maxReplicaCount (100) is within this stack's cap
    for pool in pools_of(o, i):
        ref = {"apiVersion": pool["apiVersion"], "kind": "SandboxWarmPool", "name": pool["metadata"]["name"]}
        o.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                  "metadata": {"name": f"{pool['metadata']['name']}-keda", "namespace": namespace_of(o, i)},
                  "spec": {"scaleTargetRef": ref, "triggers": [{"type": "cpu", "metadata": {"value": "50"}}]}})
    return bool(pools_of(o, i))


@mutation("GPU template pooled without opt-in", "sandbox-gpu-pool-opt-in", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    container(o, i).setdefault("resources", {}).setdefault("limits", {})["nvidia.com/gpu"] = "1"
    return bool(pools_of(o, i))


@mutation("pool left without its template", "stack-pool-references-template", {"SandboxTemplate"})
def _(o: Objects, i: int, c: Context) -> bool:
    pools = pools_of(o, i)
    o[i]["metadata"]["name"] += "-renamed"
    return bool(pools)


# --- KubeVirt VMs --------------------------------------------------------------------------------------

def _volumes(o: Objects, i: int) -> list[dict]:
    return vmi(o, i).setdefault("volumes", [])


@mutation("hostDisk volume", "kubevirt-no-host-disk", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    _volumes(o, i).append({"name": "host", "hostDisk": {"path": "/var/lib/disk.img", "type": "DiskOrCreate"}})


@mutation("inline cloud-init secret", "kubevirt-cloud-init-from-secret", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    _volumes(o, i).append({"name": "inline", "cloudInitNoCloud": {"userData": "#cloud-config\npassword: hunter2\n"}})


@mutation("inline base64 cloud-init", "kubevirt-cloud-init-from-secret", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    _volumes(o, i).append({"name": "inline64", "cloudInitConfigDrive": {"userDataBase64": "I2Nsb3VkLWNvbmZpZwo="}})


@mutation("GPU not allowlisted", "kubevirt-host-devices-allowlisted", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    devices = vmi(o, i).setdefault("domain", {}).setdefault("devices", {})
    devices.setdefault("gpus", []).append({"name": "gpu", "deviceName": "nvidia.com/TU104GL_Tesla_T4"})


@mutation("host device passthrough", "kubevirt-host-devices-allowlisted", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    devices = vmi(o, i).setdefault("domain", {}).setdefault("devices", {})
    devices.setdefault("hostDevices", []).append({"name": "usb", "deviceName": "kubevirt.io/usb-storage"})


@mutation("VM without limits", "kubevirt-vm-resource-limits", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    vmi_specs(o[i])[0].vm_spec.pop("instancetype", None)
    vmi(o, i).get("domain", {}).get("resources", {}).pop("limits", None)


@mutation(":latest container disk", "workload-image-tag-pinned", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> bool:
    disks = [v["containerDisk"] for v in _volumes(o, i) if "containerDisk" in v]
    for disk in disks:
        disk["image"] = "quay.io/containerdisks/ubuntu:latest"
    return bool(disks)


@mutation("container disk from an untrusted registry", "sandbox-image-source", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> bool:
    disks = [v["containerDisk"] for v in _volumes(o, i) if "containerDisk" in v]
    for disk in disks:
        disk["image"] = "quay.io/attacker/disk:1.0"
    return bool(disks)


@mutation("service-account volume in the guest", "sandbox-no-service-account-token", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    _volumes(o, i).append({"name": "sa", "serviceAccount": {"serviceAccountName": "default"}})


@mutation("reserved label on the VM template", "sandbox-reserved-metadata", VM_KINDS)
def _(o: Objects, i: int, c: Context) -> None:
    vmi_specs(o[i])[0].metadata.setdefault("labels", {})["agents.x-k8s.io/claim-uid"] = "spoofed"


@mutation("VM pool above the cap", "sandbox-warm-pool-cap", {"VirtualMachinePool"})
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["replicas"] = c.policy.max_warm_pool_replicas + 1


# --- around the workload: RBAC, namespace, stack ---------------------------------------------------------

@mutation("wildcard RBAC", "rbac-no-wildcards", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> None:
    o.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
              "metadata": {"name": "everything", "namespace": namespace_of(o, i)},
              "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})


@mutation("broad-group binding", "rbac-no-broad-group-bindings", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> None:
    o.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "everyone-claims", "namespace": namespace_of(o, i)},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sandbox-claimer"},
              "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]})


@mutation("claimer may write pods", "rbac-claimers-cannot-write-workloads", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> bool:
    roles = [r for r in in_namespace(o, i, "Role") if r["metadata"]["name"] == "sandbox-claimer"]
    for role in roles:
        role["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "patch"]})
    return bool(roles)


@mutation("namespace not restricted", "namespace-pss-restricted", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> bool:
    namespaces = [n for n in o if n["kind"] == "Namespace" and n["metadata"]["name"] == namespace_of(o, i)]
    for namespace in namespaces:
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    return bool(namespaces)


@mutation("default-deny policy removed", "tenant-namespace-guardrails", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> bool:
    policies = in_namespace(o, i, "NetworkPolicy")
    o[:] = [x for x in o if not any(x is p for p in policies)]
    return bool(policies)


@mutation("duplicate object", "stack-unique-objects", ANY_WORKLOAD)
def _(o: Objects, i: int, c: Context) -> None:
    o.append(copy.deepcopy(o[i]))


# --- the KubeVirt install --------------------------------------------------------------------------------

KUBEVIRT = frozenset({"KubeVirt"})


def _developer(o: Objects, i: int) -> dict:
    return o[i]["spec"].setdefault("configuration", {}).setdefault("developerConfiguration", {})


@mutation("software emulation in prod", "kubevirt-no-emulation-in-prod", KUBEVIRT)
def _(o: Objects, i: int, c: Context) -> bool:
    _developer(o, i)["useEmulation"] = True
    return c.environment == "prod"


@mutation("Root feature gate", "kubevirt-feature-gates-allowlisted", KUBEVIRT)
def _(o: Objects, i: int, c: Context) -> None:
    _developer(o, i).setdefault("featureGates", []).append("Root")


@mutation("uninstall removes workloads", "kubevirt-uninstall-blocks-on-workloads", KUBEVIRT)
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["uninstallStrategy"] = "RemoveWorkloads"


@mutation("virt-launcher SELinux spc_t", "pss-selinux", KUBEVIRT)
def _(o: Objects, i: int, c: Context) -> None:
    o[i]["spec"]["configuration"]["selinuxLauncherType"] = "spc_t"


@mutation("unlisted permitted host device", "kubevirt-host-devices-allowlisted", KUBEVIRT)
def _(o: Objects, i: int, c: Context) -> None:
    permitted = o[i]["spec"]["configuration"].setdefault("permittedHostDevices", {})
    permitted.setdefault("pciHostDevices", []).append({"pciVendorSelector": "10DE:1EB8", "resourceName": "nvidia.com/T4"})


# --- the test ----------------------------------------------------------------------------------------------

def stacks_under_test() -> list[tuple[str, Context, Objects]]:
    stacks = []
    for name in SHIPPED_STACKS:
        spec, manifests = shipped(name)
        # Judge at each rule's own level, as a mandatory stack would, so dev counts too.
        context = Context(spec.cluster.environment, spec.policy.model_copy(update={"enforcement": "mandatory"}))
        stacks.append((name, context, list(manifests)))
    spec, manifests = shipped("prod")
    context = Context(spec.cluster.environment, spec.policy)
    # Prod with KubeVirt and VMs: its admission policies as a stack installing KubeVirt renders them.
    extension = documents(VM_EXTENSION)
    kubevirt = next(m["metadata"]["namespace"] for m in extension if m["kind"] == "KubeVirt")
    others = [m for m in manifests if m["kind"] not in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")]
    stacks.append(("prod+vms", context, [*others, *extension, *build_admission(spec.policy, spec.cluster.environment, spec.cluster.name,
                                                                 [t.name for t in spec.tenants], kubevirt)]))
    return stacks


def _key(finding: Any) -> tuple[str, str, str]:
    return finding.rule.name, finding.object_ref, finding.message


def test_there_are_at_least_25_mutation_classes() -> None:
    assert len(MUTATIONS) >= 25
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)


def test_every_insecure_mutation_of_every_workload_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    applied, caught, not_applicable, targets, missed = 0, 0, 0, 0, []
    for stack, context, objects in stacks_under_test():
        baseline = check(objects, context)
        assert baseline.blocking == [], f"{stack}: the baseline must be clean"
        before = {_key(f) for f in baseline.findings}
        for index, target in enumerate(objects):
            if target["kind"] not in ANY_WORKLOAD | KUBEVIRT:
                continue
            targets += 1
            for m in (m for m in MUTATIONS if target["kind"] in m.kinds):
                # CRDs are large and no mutation touches them: share instead of copying.
                mutated = [o if o["kind"] == "CustomResourceDefinition" else copy.deepcopy(o) for o in objects]
                if not m.apply(mutated, index, context):
                    not_applicable += 1
                    continue
                applied += 1
                new = [f for f in check(mutated, context).findings if _key(f) not in before]
                if any(f.rule.name == m.expects and f.blocking for f in new):
                    caught += 1
                else:
                    missed.append(f"{stack}: {m.name} on {target['kind']} {target['metadata']['name']} "
                                  f"(new findings: {sorted({f.rule.name for f in new}) or 'none'})")
    rate = 100.0 * caught / applied if applied else 0.0
    with capsys.disabled():
        print(f"\nmutation test: {len(MUTATIONS)} classes, {targets} workloads/VMs/installs in "
              f"{len(SHIPPED_STACKS) + 1} stacks, {applied} mutations applied ({not_applicable} not applicable): "
              f"caught {caught}/{applied} = {rate:.1f}%")
    assert missed == [], "uncaught mutations:\n" + "\n".join(missed)
    assert applied > 0 and rate == 100.0
