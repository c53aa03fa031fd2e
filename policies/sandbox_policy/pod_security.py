"""Pod Security Standards, `restricted` profile, for every pod spec wherever it is embedded.

One rule per PSS control (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
named after it, so a violation reads like the admission message the API server would
give. The checks run on Pods, workload templates (Deployment, Job, ...) and the pod
templates of agent-sandbox Sandboxes and SandboxTemplates alike.

KubeVirt VMs have no pod spec of their own: KubeVirt generates each virt-launcher pod.
What a VM can still push into its launcher is checked where it is set: the KubeVirt
CR's `selinuxLauncherType` here, hostDisk (a hostPath in disguise), host devices,
service-account volumes and the `Root` feature gate by the KubeVirt and sandbox rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from .cel import literal
from .rule import Context, Manifest, RuleFamily, Violation
from .workloads import POD_KINDS, as_dict, as_list, containers, dig, effective, pod_security, pod_specs

FAMILY = RuleFamily("pod-security")
RESTRICTED = "Pod Security Standards (restricted)"

ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ALLOWED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
# Pod Security Admission's allowed sysctls at its newest version (k8s.io/pod-security-admission
# policy/check_sysctls.go, sysctlsAllowedV1Dot32, unchanged through v1.36): the v1.0 set,
# ip_local_reserved_ports (v1.27), the tcp_keepalive_* and tcp_fin_timeout (v1.29) and
# tcp_rmem / tcp_wmem (v1.32), all namespaced per pod.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
})
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_APPARMOR = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


@FAMILY.object_rule(
    "pss-host-process", severity="critical", kinds=POD_KINDS,
    description=f"{RESTRICTED}: Windows HostProcess containers get full access to the node.",
    remediation="Remove securityContext.windowsOptions.hostProcess (or set it to false) on the pod and every container.",
    cel="variables.podSC.?windowsOptions.?hostProcess.orValue(false) != true"
        " && variables.containers.all(c, c.?securityContext.?windowsOptions.?hostProcess.orValue(false) != true)",
)
def host_process(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        if as_dict(pod_security(pod).get("windowsOptions")).get("hostProcess") is True:
            yield f"{pod.path}: securityContext.windowsOptions.hostProcess is true"
        for container in containers(pod):
            if as_dict(container.security.get("windowsOptions")).get("hostProcess") is True:
                yield f"{pod.path}: {container} sets windowsOptions.hostProcess: true"


@FAMILY.object_rule(
    "pss-host-namespaces", severity="critical", kinds=POD_KINDS,
    description=f"{RESTRICTED}: sharing the node's network, PID or IPC namespace breaks pod isolation.",
    remediation="Remove hostNetwork, hostPID and hostIPC from the pod spec (or set them to false).",
    cel=" && ".join(f"variables.podSpec.?{f}.orValue(false) != true" for f in ("hostNetwork", "hostPID", "hostIPC")),
)
def host_namespaces(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(field) is True:
                yield f"{pod.path}.{field} is true"


@FAMILY.object_rule(
    "pss-privileged", severity="critical", kinds=POD_KINDS,
    description=f"{RESTRICTED}: privileged containers have all capabilities and every device of the node.",
    remediation="Set securityContext.privileged: false (or remove it) on every container.",
    cel="variables.containers.all(c, c.?securityContext.?privileged.orValue(false) != true)",
)
def privileged(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            if container.security.get("privileged") is True:
                yield f"{pod.path}: {container} is privileged"


@FAMILY.object_rule(
    "pss-capabilities", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: containers must drop ALL capabilities and may add back only NET_BIND_SERVICE.",
    remediation="Set securityContext.capabilities: {drop: [ALL]} on every container; add at most NET_BIND_SERVICE.",
    cel="variables.containers.all(c, 'ALL' in c.?securityContext.?capabilities.?drop.orValue([])"
        f" && c.?securityContext.?capabilities.?add.orValue([]).all(a, a in {literal(ALLOWED_ADDED_CAPABILITIES)}))",
)
def capabilities(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            caps = as_dict(container.security.get("capabilities"))
            if "ALL" not in as_list(caps.get("drop")):
                yield f"{pod.path}: {container} does not drop ALL capabilities"
            added = sorted(str(c) for c in as_list(caps.get("add")) if c not in ALLOWED_ADDED_CAPABILITIES)
            if added:
                yield f"{pod.path}: {container} adds capabilities {', '.join(added)}"


@FAMILY.object_rule(
    "pss-host-path-volumes", severity="critical", kinds=POD_KINDS,
    description=f"{RESTRICTED}: hostPath volumes expose the node's filesystem to the pod.",
    remediation="Replace hostPath volumes with emptyDir, configMap, secret, projected or a persistentVolumeClaim.",
    cel="variables.podSpec.?volumes.orValue([]).all(v, !has(v.hostPath))",
)
def host_path_volumes(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for volume in as_list(pod.spec.get("volumes")):
            if isinstance(volume, dict) and "hostPath" in volume:
                path = as_dict(volume["hostPath"]).get("path", "?")
                yield f"{pod.path}: volume {volume.get('name', '?')!r} mounts host path {path}"


@FAMILY.object_rule(
    "pss-volume-types", severity="medium", kinds=POD_KINDS,
    description=f"{RESTRICTED}: only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, "
                "projected and secret volumes are allowed.",
    remediation="Use one of the allowed volume types; mount network storage through a persistentVolumeClaim.",
    cel=f"variables.podSpec.?volumes.orValue([]).all(v, v.all(k, k in {literal(ALLOWED_VOLUME_TYPES | {'name', 'hostPath'})}))",
)
def volume_types(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for volume in as_list(pod.spec.get("volumes")):
            if not isinstance(volume, dict):
                continue
            # hostPath has its own (critical) rule; report it once.
            kinds = sorted(set(volume) - {"name", "hostPath"} - ALLOWED_VOLUME_TYPES)
            if kinds:
                yield f"{pod.path}: volume {volume.get('name', '?')!r} has disallowed type {', '.join(kinds)}"


@FAMILY.object_rule(
    "pss-host-ports", severity="medium", kinds=POD_KINDS,
    description=f"{RESTRICTED}: host ports bind the node's network interfaces and bypass network policy.",
    remediation="Remove hostPort from container ports; expose the pod through a Service instead.",
    cel="variables.containers.all(c, c.?ports.orValue([]).all(p, p.?hostPort.orValue(0) == 0))",
)
def host_ports(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            for port in as_list(container.container.get("ports")):
                if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                    yield f"{pod.path}: {container} binds host port {port['hostPort']}"


@FAMILY.object_rule(
    "pss-apparmor", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: the AppArmor profile may only be RuntimeDefault or Localhost, never Unconfined.",
    remediation="Remove the AppArmor override or set appArmorProfile.type to RuntimeDefault (or a Localhost profile).",
    cel=f"variables.podSC.?appArmorProfile.?type.orValue('RuntimeDefault') in {literal(ALLOWED_APPARMOR)}"
        f" && variables.containers.all(c, c.?securityContext.?appArmorProfile.?type.orValue('RuntimeDefault')"
        f" in {literal(ALLOWED_APPARMOR)})"
        f" && variables.podMeta.?annotations.orValue({{}}).all(k, !k.startsWith({literal(APPARMOR_ANNOTATION_PREFIX)})"
        " || variables.podMeta.annotations[k] == 'runtime/default' || variables.podMeta.annotations[k].startsWith('localhost/'))",
)
def apparmor(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        profile = as_dict(pod_security(pod).get("appArmorProfile")).get("type")
        if profile is not None and profile not in ALLOWED_APPARMOR:
            yield f"{pod.path}: securityContext.appArmorProfile.type is {profile}"
        for container in containers(pod):
            profile = as_dict(container.security.get("appArmorProfile")).get("type")
            if profile is not None and profile not in ALLOWED_APPARMOR:
                yield f"{pod.path}: {container} sets appArmorProfile.type {profile}"
        for key, value in as_dict(pod.metadata.get("annotations")).items():
            if key.startswith(APPARMOR_ANNOTATION_PREFIX) and not (
                value == "runtime/default" or str(value).startswith("localhost/")
            ):
                yield f"{pod.path.removesuffix('.spec')}.metadata.annotations[{key}] is {value}"


@FAMILY.object_rule(
    "pss-selinux", severity="high", kinds=POD_KINDS | {"KubeVirt"},
    description=f"{RESTRICTED}: SELinux options may not set a custom user or role, and only container types "
                "(for virt-launcher pods too: the KubeVirt CR's selinuxLauncherType).",
    remediation="Remove seLinuxOptions.user and .role; use type container_t (or leave seLinuxOptions unset); "
                "leave the KubeVirt CR's configuration.selinuxLauncherType unset.",
    cel=f"(object.kind != 'KubeVirt' || object.?spec.?configuration.?selinuxLauncherType.orValue('')"
        f" in {literal(ALLOWED_SELINUX_TYPES)})"
        " && ([variables.podSC] + variables.containers.map(c, c.?securityContext.orValue({}))).all(sc,"
        f" sc.?seLinuxOptions.?type.orValue('') in {literal(ALLOWED_SELINUX_TYPES)}"
        " && sc.?seLinuxOptions.?user.orValue('') == '' && sc.?seLinuxOptions.?role.orValue('') == '')",
)
def selinux(manifest: Manifest, context: Context) -> Iterator[str]:
    if manifest.get("kind") == "KubeVirt":
        launcher = dig(manifest, "spec", "configuration", "selinuxLauncherType")
        if str(launcher or "") not in ALLOWED_SELINUX_TYPES:
            yield f"spec.configuration.selinuxLauncherType {launcher} would apply to every virt-launcher pod"
    for pod in pod_specs(manifest):
        places = [("pod", pod_security(pod))] + [(str(c), c.security) for c in containers(pod)]
        for where, security in places:
            options = as_dict(security.get("seLinuxOptions"))
            if str(options.get("type", "")) not in ALLOWED_SELINUX_TYPES:
                yield f"{pod.path}: {where} sets seLinuxOptions.type {options['type']}"
            for field in ("user", "role"):
                if options.get(field):
                    yield f"{pod.path}: {where} sets seLinuxOptions.{field} {options[field]}"


@FAMILY.object_rule(
    "pss-proc-mount", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: an unmasked /proc exposes host kernel information.",
    remediation="Remove securityContext.procMount or set it to Default.",
    cel="variables.containers.all(c, c.?securityContext.?procMount.orValue('Default') == 'Default')",
)
def proc_mount(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            mount = container.security.get("procMount")
            if mount not in (None, "Default"):
                yield f"{pod.path}: {container} sets procMount {mount}"


@FAMILY.object_rule(
    "pss-seccomp", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: every container must run under the RuntimeDefault or a Localhost seccomp profile.",
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or on every container).",
    cel=f"variables.podSC.?seccompProfile.?type.orValue('RuntimeDefault') in {literal(ALLOWED_SECCOMP)}"
        " && variables.containers.all(c, c.?securityContext.?seccompProfile.?type.hasValue()"
        f" ? c.securityContext.seccompProfile.type in {literal(ALLOWED_SECCOMP)}"
        " : variables.podSC.?seccompProfile.?type.hasValue())",
)
def seccomp(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        pod_profile = as_dict(pod_security(pod).get("seccompProfile")).get("type")
        if pod_profile is not None and pod_profile not in ALLOWED_SECCOMP:
            yield f"{pod.path}: securityContext.seccompProfile.type is {pod_profile}"
        for container in containers(pod):
            own = as_dict(container.security.get("seccompProfile")).get("type")
            if own is not None and own not in ALLOWED_SECCOMP:
                yield f"{pod.path}: {container} sets seccompProfile.type {own}"
            elif own is None and pod_profile is None:
                yield f"{pod.path}: {container} has no seccomp profile (set RuntimeDefault on the pod or container)"


@FAMILY.object_rule(
    "pss-sysctls", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: only namespaced, safe sysctls may be set.",
    remediation="Remove unsafe sysctls from securityContext.sysctls; allowed: " + ", ".join(sorted(SAFE_SYSCTLS)) + ".",
    cel=f"variables.podSC.?sysctls.orValue([]).all(s, s.?name.orValue('') in {literal(SAFE_SYSCTLS)})",
)
def sysctls(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for sysctl in as_list(pod_security(pod).get("sysctls")):
            name = as_dict(sysctl).get("name")
            if name not in SAFE_SYSCTLS:
                yield f"{pod.path}: sets unsafe sysctl {name}"


PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")


@FAMILY.object_rule(
    "pss-probe-host", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: probes and lifecycle handlers may not set a host: the kubelet would send the "
                "request from the node, to any address (Kubernetes 1.34+).",
    remediation="Remove host from httpGet and tcpSocket in probes and lifecycle handlers; they then target the pod's "
                "own IP.",
    cel="variables.containers.all(c, "
        f"{literal(PROBES)}.all(p, ['httpGet', 'tcpSocket'].all(a, c[?p][?a].?host.orValue('') == ''))"
        f" && {literal(LIFECYCLE_HANDLERS)}.all(h, ['httpGet', 'tcpSocket'].all(a, c.?lifecycle[?h][?a].?host.orValue('') == '')))",
)
def probe_host(manifest: Manifest, context: Context) -> Iterator[str]:
    # As upstream's hostProbesAndHostLifecycle check (pod-security-admission v1.34+): only an
    # unset or empty host passes. Not even localhost: the kubelet probes from the node's
    # network namespace, so localhost there is the node, not the pod.
    for pod in pod_specs(manifest):
        for container in containers(pod):
            handlers = [(probe, as_dict(container.container.get(probe))) for probe in PROBES] + [
                (f"lifecycle.{hook}", as_dict(dig(container.container, "lifecycle", hook)))
                for hook in LIFECYCLE_HANDLERS
            ]
            for where, handler in handlers:
                for action in ("httpGet", "tcpSocket"):
                    host = as_dict(handler.get(action)).get("host")
                    if host not in (None, ""):
                        yield f"{pod.path}: {container} sets {where}.{action}.host {host}"


@FAMILY.object_rule(
    "pss-privilege-escalation", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: containers must set allowPrivilegeEscalation: false (no setuid gains).",
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    cel="variables.containers.all(c, c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false)",
)
def privilege_escalation(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            if container.security.get("allowPrivilegeEscalation") is not False:
                yield f"{pod.path}: {container} does not set allowPrivilegeEscalation: false"


@FAMILY.object_rule(
    "pss-run-as-non-root", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: containers must be required to run as a non-root user (runAsNonRoot: true).",
    remediation="Set securityContext.runAsNonRoot: true on the pod, and never false on a container.",
    cel="variables.podSC.?runAsNonRoot.orValue(true) != false"
        " && variables.containers.all(c, c.?securityContext.?runAsNonRoot.hasValue()"
        " ? c.securityContext.runAsNonRoot == true : variables.podSC.?runAsNonRoot.orValue(false) == true)",
)
def run_as_non_root(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        if pod_security(pod).get("runAsNonRoot") is False:
            yield f"{pod.path}: securityContext.runAsNonRoot is false"
        for container in containers(pod):
            if container.security.get("runAsNonRoot") is False:
                yield f"{pod.path}: {container} sets runAsNonRoot: false"
            elif effective(pod, container, "runAsNonRoot") is not True:
                yield f"{pod.path}: {container} is not required to run as non-root"


@FAMILY.object_rule(
    "pss-run-as-user", severity="high", kinds=POD_KINDS,
    description=f"{RESTRICTED}: no pod or container may run as UID 0 (root).",
    remediation="Remove runAsUser: 0, or set a non-zero UID such as 65532.",
    cel="variables.podSC.?runAsUser.orValue(1) != 0"
        " && variables.containers.all(c, c.?securityContext.?runAsUser.orValue(1) != 0)",
)
def run_as_user(manifest: Manifest, context: Context) -> Iterator[Violation | str]:
    for pod in pod_specs(manifest):
        if pod_security(pod).get("runAsUser") == 0:
            yield f"{pod.path}: securityContext.runAsUser is 0"
        for container in containers(pod):
            if container.security.get("runAsUser") == 0:
                yield f"{pod.path}: {container} sets runAsUser: 0"
