"""Sandbox-specific rules: what an untrusted agent workload may and may not carry.

These apply to agent-sandbox objects (SandboxTemplate, Sandbox, SandboxWarmPool,
SandboxClaim) and KubeVirt VMs; the image and credential rules apply to every
workload, since a leaked credential or a mutable image is a problem anywhere.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import itertools
import re
from collections.abc import Iterator
from typing import Any

from .cel import alternation, literal
from .rule import Context, Manifest, RuleFamily, Violation
from .vocabulary import (
    ALLOWED_DOMAINS_ANNOTATION,
    CILIUM_ENFORCER,
    EGRESS_ENFORCER_ANNOTATION,
    GPU_OPT_IN_ANNOTATION,
    IMAGE_PATTERN,
    METADATA_NETWORKS,
    RESERVED_KEY_DOMAINS,
    as_ipv4,
    parse_image,
    reserved_domain,
)
from .workloads import (
    POD_KINDS,
    SANDBOX_KINDS,
    SANDBOX_POD_KINDS,
    VM_KINDS,
    WARM_POOL_KINDS,
    annotations,
    as_dict,
    as_list,
    containers,
    describe,
    dig,
    env_vars,
    images,
    is_trusted,
    metadata_maps,
    pod_specs,
    resource_names,
    vmi_specs,
    vmi_volumes,
)

FAMILY = RuleFamily("sandbox")

# Images in CEL: the grammar of vocabulary.parse_image; a valid reference ends in its digest,
# and has a tag when its last path segment does (a registry port is followed by '/').
_DIGEST_END = "@sha256:[a-f0-9]{64}$"
_TAG_END = r":[\w][\w.-]{0,127}$"
_VALID_IMAGE = f"i.matches({literal(IMAGE_PATTERN)})"

# --- images ------------------------------------------------------------------------


def image_repository(name: str) -> str:
    """The full repository path, with Docker Hub's implicit registry made explicit."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def from_allowed_registry(name: str, allowed: list[str]) -> bool:
    repository = image_repository(name)
    return any(repository == entry.rstrip("/") or repository.startswith(entry.rstrip("/") + "/") for entry in allowed)


@FAMILY.object_rule(
    "workload-image-tag-pinned", severity="medium", kinds=POD_KINDS | VM_KINDS,
    description="Images must name a version: never the mutable ':latest' tag, never untagged.",
    remediation="Pin a version tag (app:1.2.3) or, better, a digest (app@sha256:...).",
    cel=f"variables.images.all(i, {_VALID_IMAGE} && (i.matches({literal(_DIGEST_END)})"
        f" || (i.split('@')[0].matches({literal(_TAG_END)}) && !i.split('@')[0].endsWith(':latest'))))",
)
def image_tag_pinned(manifest: Manifest, context: Context) -> Iterator[str]:
    for where, image in images(manifest):
        parts = parse_image(image)
        if parts is None:
            yield f"{where}: {image!r} is not a valid image reference"
            continue
        _, tag, digest = parts
        if digest is None and tag in (None, "latest"):
            yield f"{where}: image {image} uses {'the :latest tag' if tag else 'no tag (implicitly :latest)'}"


def _image_source_cel(allowed: list[str]) -> str:
    """image_repository and from_allowed_registry in CEL, over the undigested valid images."""
    names = (f"variables.images.filter(i, {_VALID_IMAGE} && !i.matches({literal(_DIGEST_END)}))"
             f".map(i, i.matches({literal(_TAG_END)}) ? i.substring(0, i.lastIndexOf(':')) : i)")
    first = "n.split('/')[0]"
    repositories = (f"{names}.map(n, !n.contains('/') ? 'docker.io/library/' + n"
                    f" : ({first}.contains('.') || {first}.contains(':') || {first} == 'localhost') ? n : 'docker.io/' + n)")
    entries = sorted({entry.rstrip("/") for entry in allowed})
    return f"{repositories}.all(r, {literal(entries)}.exists(a, r == a || r.startsWith(a + '/')))"


@FAMILY.object_rule(
    "sandbox-image-source", severity="high", kinds=SANDBOX_POD_KINDS | VM_KINDS, settings=("allowed_registries",),
    description="Sandbox images must be pinned by digest or come from a registry the stack trusts "
                "(policy.allowedRegistries).",
    remediation="Pin the image by @sha256 digest, or pull it through a registry listed in policy.allowedRegistries.",
    cel=lambda context: _image_source_cel(context.policy.allowed_registries),
)
def image_source(manifest: Manifest, context: Context) -> Iterator[str]:
    allowed = context.policy.allowed_registries
    for where, image in images(manifest):
        parts = parse_image(image)
        if parts is None or parts[2] is not None:
            continue  # invalid references are reported by workload-image-tag-pinned
        if not from_allowed_registry(parts[0], allowed):
            trusted = ", ".join(allowed) if allowed else "none configured"
            yield f"{where}: image {image} has no digest and its registry is not trusted (allowed: {trusted})"


# --- identity, resources, runtime ----------------------------------------------------------


# Projected volume sources that hand the pod a credential of its own: a service-account
# token, and (Kubernetes 1.34+, PodCertificateRequest) a podCertificate, a private key with
# a certificate signed for the pod's identity that authenticates it like a token does.
CREDENTIAL_PROJECTIONS = {
    "serviceAccountToken": "a service-account token",
    "podCertificate": "a pod certificate (private key and signed certificate)",
}


@FAMILY.object_rule(
    "sandbox-no-service-account-token", severity="high", kinds=SANDBOX_POD_KINDS | VM_KINDS,
    description="Sandboxed code must get no Kubernetes API credentials: service-account token automount off, no "
                "token or pod-certificate projections.",
    remediation="Set automountServiceAccountToken: false on the pod spec; remove serviceAccountToken and "
                "podCertificate projections and KubeVirt serviceAccount volumes.",
    cel="(!variables.hasPodSpec || variables.podSpec.?automountServiceAccountToken.orValue(true) == false)"
        " && variables.podSpec.?volumes.orValue([]).all(v, v.?projected.?sources.orValue([]).all(s,"
        " !has(s.serviceAccountToken) && !has(s.podCertificate)))"
        " && variables.vmVolumes.all(v, !has(v.serviceAccount))",
)
def no_service_account_token(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        if pod.spec.get("automountServiceAccountToken") is not False:
            yield f"{pod.path}.automountServiceAccountToken is not false (the token is mounted by default)"
        for volume in as_list(pod.spec.get("volumes")):
            sources = [as_dict(s) for s in as_list(dig(volume, "projected", "sources"))]
            for field, credential in CREDENTIAL_PROJECTIONS.items():
                if any(field in source for source in sources):
                    yield f"{pod.path}: volume {as_dict(volume).get('name', '?')!r} projects {credential}"
    for vmi in vmi_specs(manifest):
        for volume in vmi_volumes(vmi):
            if "serviceAccount" in volume:
                yield f"{vmi.path}: volume {volume.get('name', '?')!r} exposes a service-account token to the guest"


@FAMILY.object_rule(
    "sandbox-resources-set", severity="medium", kinds=SANDBOX_POD_KINDS,
    description="Every sandbox container must set CPU and memory requests and limits.",
    remediation="Set resources.requests and resources.limits for cpu and memory on every (init) container.",
    cel="(variables.podSpec.?initContainers.orValue([]) + variables.podSpec.?containers.orValue([])).all(c,"
        " ['cpu', 'memory'].all(n, n in c.?resources.?requests.orValue({}) && n in c.?resources.?limits.orValue({})))",
)
def resources_set(manifest: Manifest, context: Context) -> Iterator[str]:
    for pod in pod_specs(manifest):
        for container in containers(pod):
            if container.field == "ephemeralContainers":
                continue  # ephemeral containers cannot set resources
            resources = as_dict(container.container.get("resources"))
            missing = [
                f"{section}.{name}"
                for section in ("requests", "limits")
                for name in ("cpu", "memory")
                if name not in as_dict(resources.get(section))
            ]
            if missing:
                yield f"{pod.path}: {container} does not set {', '.join(missing)}"


def _runtime_class_cel(context: Context) -> str:
    name = "variables.podSpec.?runtimeClassName.orValue('')"
    conditions = []
    conditions.append(f"{name} == '' || {name} in {literal(context.policy.sandbox_runtime_classes)}")
    if context.policy.require_runtime_class:
        conditions.append(f"{name} != ''")
    body = " && ".join(f"({c})" for c in conditions) or "true"
    return f"variables.trusted || !variables.hasPodSpec || ({body})"


@FAMILY.object_rule(
    "sandbox-runtime-class", severity="high", kinds=SANDBOX_POD_KINDS,
    settings=("require_runtime_class", "sandbox_runtime_classes"),
    description="Untrusted sandboxes that name a runtime class name a sandboxing one (policy.sandboxRuntimeClasses: "
                "gVisor, Kata; never runc), and must name one where the stack requires it (policy.requireRuntimeClass).",
    remediation="Set runtimeClassName to one of policy.sandboxRuntimeClasses (for example gvisor or kata) in the "
                "template, or mark a vetted template trust: trusted.",
    cel=lambda context: _runtime_class_cel(context),
)
def runtime_class(manifest: Manifest, context: Context) -> Iterator[str]:
    if is_trusted(manifest):
        return
    allowed = context.policy.sandbox_runtime_classes
    for pod in pod_specs(manifest):
        name = pod.spec.get("runtimeClassName")
        if name is None or name == "":
            if context.policy.require_runtime_class:
                yield f"{pod.path}.runtimeClassName is not set, but this stack requires one for untrusted sandboxes"
        elif name not in allowed:
            yield (f"{pod.path}.runtimeClassName is {name!r}, not a sandboxing runtime class "
                   f"(policy.sandboxRuntimeClasses: {', '.join(allowed)})")


# The container-runtime handlers that put a kernel boundary around the pod: gVisor's `runsc`
# (GKE Sandbox registers it as `gvisor`) and Kata's `kata` / `kata-<hypervisor>`.
SANDBOXING_HANDLERS = ("gvisor", "kata", "runsc")
SANDBOXING_HANDLER_PREFIXES = ("kata-", "runsc-")


def is_sandboxing_handler(handler: Any) -> bool:
    name = str(handler or "")
    return name in SANDBOXING_HANDLERS or name.startswith(SANDBOXING_HANDLER_PREFIXES)


@FAMILY.object_rule(
    "sandbox-runtime-class-handler", severity="high", kinds={"RuntimeClass"}, settings=("sandbox_runtime_classes",),
    description="A RuntimeClass named as sandboxing (policy.sandboxRuntimeClasses) runs a sandboxing handler "
                "(runsc, kata*): the name is only as good as the handler behind it.",
    remediation="Point the RuntimeClass at the gVisor (runsc) or Kata (kata, kata-qemu, ...) handler, or take its "
                "name off policy.sandboxRuntimeClasses.",
    cel=lambda context: f"!(object.metadata.name in {literal(context.policy.sandbox_runtime_classes)})"
        f" || object.?handler.orValue('') in {literal(SANDBOXING_HANDLERS)}"
        f" || {literal(SANDBOXING_HANDLER_PREFIXES)}.exists(p, object.?handler.orValue('').startsWith(p))",
)
def runtime_class_handler(manifest: Manifest, context: Context) -> Iterator[str]:
    name, handler = dig(manifest, "metadata", "name"), manifest.get("handler")
    if name in context.policy.sandbox_runtime_classes and not is_sandboxing_handler(handler):
        yield (f"RuntimeClass {name} is listed in policy.sandboxRuntimeClasses, but its handler {handler!r} "
               "is no sandbox (want runsc or kata*)")


# --- network -----------------------------------------------------------------------------


@FAMILY.object_rule(
    "sandbox-network-policy", severity="high", kinds={"SandboxTemplate"},
    description="A network policy must be in force: Managed by agent-sandbox, or Unmanaged only with a declared "
                "external enforcer.",
    remediation="Use networkPolicyManagement: Managed, or declare the enforcer (network.externalEnforcer, e.g. "
                f"cilium), which sets the {EGRESS_ENFORCER_ANNOTATION} annotation.",
    cel=f"object.?spec.?networkPolicyManagement.orValue('') in ['', 'Managed']"
        " || (object.spec.networkPolicyManagement == 'Unmanaged'"
        f" && object.?metadata.?annotations[?{literal(EGRESS_ENFORCER_ANNOTATION)}].orValue('') != '')",
)
def network_policy_in_force(manifest: Manifest, context: Context) -> Iterator[str]:
    management = dig(manifest, "spec", "networkPolicyManagement") or "Managed"
    if management == "Unmanaged" and not annotations(manifest).get(EGRESS_ENFORCER_ANNOTATION):
        yield f"networkPolicyManagement is Unmanaged and no {EGRESS_ENFORCER_ANNOTATION} annotation declares what enforces egress"
    elif management not in ("Managed", "Unmanaged"):
        yield f"networkPolicyManagement is {management!r}"


def selects(policy: Manifest, namespace: Any, pod_labels: dict[str, Any]) -> bool:
    """Whether a CiliumNetworkPolicy applies to pods with these labels in this namespace and
    restricts their egress. Selectors with expressions count as not selecting: the rule
    would have to evaluate them and gains nothing, the builders never write them."""
    spec = as_dict(policy.get("spec"))
    selector = as_dict(spec.get("endpointSelector"))
    match = as_dict(selector.get("matchLabels"))
    return (
        dig(policy, "metadata", "namespace") == namespace and not selector.get("matchExpressions")
        and all(pod_labels.get(key) == value for key, value in match.items())
        and ("egress" in spec or as_dict(spec.get("enableDefaultDeny")).get("egress") is True)
    )


@FAMILY.stack_rule(
    "sandbox-egress-enforced", severity="high", settings=("environment",),
    description="In staging and prod, an Unmanaged template's egress is enforced by a policy the stack renders: a "
                "CiliumNetworkPolicy selecting its pods; an enforcer the stack does not configure is only a claim.",
    remediation=f"Set network.externalEnforcer: {CILIUM_ENFORCER} (the stack renders the template's "
                "CiliumNetworkPolicy from its egress allowlist), or use management: Managed.",
)
def egress_enforced(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    if context.environment == "dev":
        return  # dev clusters may leave egress to an enforcer they run by hand
    policies = [m for m in manifests if m.get("kind") == "CiliumNetworkPolicy"]
    for index, manifest in enumerate(manifests):
        if manifest.get("kind") != "SandboxTemplate" or dig(manifest, "spec", "networkPolicyManagement") != "Unmanaged":
            continue
        namespace = dig(manifest, "metadata", "namespace")
        pod_labels = as_dict(dig(manifest, "spec", "podTemplate", "metadata", "labels"))
        if not any(selects(policy, namespace, pod_labels) for policy in policies):
            enforcer = annotations(manifest).get(EGRESS_ENFORCER_ANNOTATION) or "nothing declared"
            yield index, (f"networkPolicyManagement is Unmanaged and egress is left to {enforcer}, but no "
                          "CiliumNetworkPolicy of the stack restricts the egress of its pods")


METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data.ec2.internal", "metadata"})


def _metadata_exposure(peers: Any) -> Iterator[str]:
    """Why an egress rule's `to` list reaches a cloud metadata address, if it does."""
    if not as_list(peers):
        yield "allows egress to every destination (no 'to' peers), including the cloud metadata service"
        return
    for peer in as_list(peers):
        block = as_dict(as_dict(peer).get("ipBlock"))
        if not block:
            continue  # pod and namespace selectors select pods, never node-local addresses
        try:
            written = ipaddress.ip_network(str(block.get("cidr")), strict=False)
            # IPv4-mapped spellings (::ffff:169.254.169.254/128) count as the IPv4 range they name.
            excepted = [as_ipv4(ipaddress.ip_network(str(e), strict=False)) for e in as_list(block.get("except"))]
        except ValueError:
            continue  # not an address; the API server rejects it
        network = as_ipv4(written)
        shown = str(network) if network is written else f"{written} (IPv4-mapped: {network})"
        for blocked in METADATA_NETWORKS:
            if blocked.version != network.version or not network.overlaps(blocked):  # type: ignore[arg-type]
                continue
            if network.subnet_of(blocked):  # type: ignore[arg-type]
                yield f"allows egress to {shown}, inside the link-local / metadata range {blocked}"
            elif not any(e.version == blocked.version and blocked.subnet_of(e) for e in excepted):  # type: ignore[arg-type]
                yield f"allows egress to {shown} without excepting the metadata range {blocked}"


# Cilium egress selectors that name destinations; a rule with none of them allows every address.
CILIUM_PEERS = ("toCIDR", "toCIDRSet", "toEndpoints", "toEntities", "toFQDNs", "toGroups", "toNodes", "toServices")
# Cilium entities that include addresses outside the cluster, the metadata service among them.
CILIUM_WORLD_ENTITIES = frozenset({"all", "world", "world-ipv4", "world-ipv6"})


def _cilium_metadata_exposure(rule: dict[str, Any]) -> Iterator[str]:
    """Why a CiliumNetworkPolicy egress rule reaches a cloud metadata address, if it does."""
    if not any(rule.get(peer) for peer in CILIUM_PEERS):
        yield "allows egress to every destination (no to* selector), including the cloud metadata service"
        return
    blocks = [{"cidr": cidr} for cidr in as_list(rule.get("toCIDR"))] + [as_dict(b) for b in as_list(rule.get("toCIDRSet"))]
    if blocks:
        yield from _metadata_exposure([{"ipBlock": block} for block in blocks])
    for entity in sorted(CILIUM_WORLD_ENTITIES.intersection(str(e) for e in as_list(rule.get("toEntities")))):
        yield f"allows egress to the entity {entity}, which includes the cloud metadata service"
    for fqdn in as_list(rule.get("toFQDNs")):
        name = str(as_dict(fqdn).get("matchName") or as_dict(fqdn).get("matchPattern") or "")
        if any(fnmatch.fnmatchcase(host, name.lower().rstrip(".")) for host in METADATA_HOSTNAMES):
            yield f"allows egress to {name!r}, which matches a cloud metadata host name"


def _mapped_cidr_pattern() -> str:
    """The textual spellings of an IPv4-mapped IPv6 CIDR with a prefix of 96 or more: the five
    zero groups (written out, or partly or wholly compressed by '::'), 'ffff', then the IPv4
    part as two hex groups or a dotted quad (or compressed zeros after a written-out prefix).
    Exactly the strings ipaddress reads as a network inside ::ffff:0:0/96 (tested)."""
    zero, group = "0{1,4}:", "[0-9a-f]{1,4}"
    compressed = [f"::({zero}){{0,4}}"] + [f"({zero}){{{n}}}:({zero}){{0,{4 - n}}}" for n in range(1, 5)]
    ipv4 = rf"({group}:{group}|[0-9]{{1,3}}(\.[0-9]{{1,3}}){{3}})"
    written_out = f"({zero}){{5}}ffff:(:|:{group}|{group}::|{ipv4})"
    return f"^(({'|'.join(compressed)})ffff:{ipv4}|{written_out})/0*(9[6-9]|1[01][0-9]|12[0-8])$"


MAPPED_CIDR = re.compile(_mapped_cidr_pattern())


def _as_ipv4_cel(value: str) -> str:
    """as_ipv4 in CEL, over a CIDR string: Kubernetes' cidr() refuses IPv4-mapped spellings, so
    they are rewritten to the IPv4 CIDR they name ('::ffff:a9fe:a9fe/128' -> '169.254.169.254/32')."""
    digits = "{" + ", ".join(f"'{d:x}': {d}" for d in range(16)) + "}"

    def hex_group(g: str) -> str:
        return (f"[('0000' + {g}).substring({g}.size())].map(h, {digits}[h.charAt(0)] * 4096"
                f" + {digits}[h.charAt(1)] * 256 + {digits}[h.charAt(2)] * 16 + {digits}[h.charAt(3)])[0]")

    dotted = ("[[" + hex_group("g[0]") + ", " + hex_group("g[g.size() - 1]") + "]].map(v, string(v[0] / 256) + '.'"
              " + string(v[0] % 256) + '.' + string(v[1] / 256) + '.' + string(v[1] % 256))[0]")
    ipv4 = f"(t.contains('.') ? t : [t.split(':')].map(g, {dotted})[0])"
    return (f"({value}.lowerAscii().matches({literal(MAPPED_CIDR.pattern)})"
            f" ? [{value}.lowerAscii().split('/')].map(p, [p[0].substring(p[0].indexOf('ffff:') + 5)]"
            f".map(t, {ipv4} + '/' + string(int(p[1]) - 96))[0])[0] : {value})")


def _no_metadata_egress_cel() -> str:
    """_metadata_exposure, _cilium_metadata_exposure and _is_metadata_host in CEL (Kubernetes'
    cidr and ip libraries)."""
    blocked = literal([str(n) for n in METADATA_NETWORKS])
    block_cidr, domain_ip = _as_ipv4_cel("b.?cidr.orValue('')"), _as_ipv4_cel("(d.trim() + '/128')")
    block_ok = (  # b: an ipBlock (or a Cilium toCIDRSet entry), as _metadata_exposure judges it
        f"b.size() == 0 || [{block_cidr}].all(c, !isCIDR(c)"
        f" || [b.?except.orValue([]).map(e, {_as_ipv4_cel('e')})].all(x, {blocked}.all(m,"
        " !(cidr(m).containsCIDR(c) || cidr(c).containsCIDR(m))"
        " || (!cidr(m).containsCIDR(c) && x.exists(e, isCIDR(e) && cidr(e).containsCIDR(m))))))"
    )
    egress = ("(object.kind == 'NetworkPolicy' ? object.?spec.?egress.orValue([])"
              " : object.?spec.?networkPolicy.?egress.orValue([]))")
    kubernetes = f"{egress}.all(r, r.?to.orValue([]).size() > 0 && r.to.map(p, p.?ipBlock.orValue({{}})).all(b, {block_ok}))"
    # Cilium: one rule set in spec, more in specs; a fqdn selector is a glob of names only
    # (Cilium's schema allows [-a-zA-Z0-9_.*] and at most one trailing dot).
    fqdn = ("(q.?matchName.orValue('') != '' ? q.matchName : q.?matchPattern.orValue('')).lowerAscii()")
    glob = f"'^' + ({fqdn}.endsWith('.') ? {fqdn}.substring(0, {fqdn}.size() - 1) : {fqdn}).replace('.', '\\\\.').replace('*', '.*') + '$'"
    cilium_rule = (
        f"{literal(CILIUM_PEERS)}.exists(f, r[?f].orValue([]).size() > 0)"
        f" && (r.?toCIDR.orValue([]).map(c, {{'cidr': c}}) + r.?toCIDRSet.orValue([])).all(b, {block_ok})"
        f" && !r.?toEntities.orValue([]).exists(e, e in {literal(CILIUM_WORLD_ENTITIES)})"
        f" && !r.?toFQDNs.orValue([]).exists(q, {literal(METADATA_HOSTNAMES)}.exists(h, h.matches({glob})))"
    )
    cilium = f"([object.?spec.orValue({{}})] + object.?specs.orValue([])).all(s, s.?egress.orValue([]).all(r, {cilium_rule}))"
    host = "d.trim().lowerAscii()"
    hostnames = "^" + alternation(METADATA_HOSTNAMES) + r"\.*$"
    domains = (f"object.kind != 'SandboxTemplate' || object.?metadata.?annotations[?{literal(ALLOWED_DOMAINS_ANNOTATION)}]"
               f".orValue('').split(',').all(d, !{host}.matches({literal(hostnames)})"
               f" && !(isIP(d.trim()) && {blocked}.exists(m, cidr(m).containsIP(d.trim())))"
               f" && ![{domain_ip}].exists(c, c.endsWith('/32') && isCIDR(c)"
               f" && {blocked}.exists(m, cidr(m).containsCIDR(c))))")
    return f"object.kind == 'CiliumNetworkPolicy' ? {cilium} : {kubernetes} && ({domains})"


@FAMILY.object_rule(
    "sandbox-no-metadata-egress", severity="critical", kinds={"SandboxTemplate", "NetworkPolicy", "CiliumNetworkPolicy"},
    description="No egress to link-local / cloud metadata addresses (169.254.0.0/16, fd00:ec2::254): they hand "
                "out node credentials.",
    remediation="Add the metadata ranges to the ipBlock's except list (the builders do this for you) and never "
                "allow-list 169.254.x.x or metadata host names.",
    cel=_no_metadata_egress_cel(),
)
def no_metadata_egress(manifest: Manifest, context: Context) -> Iterator[str]:
    if manifest.get("kind") == "CiliumNetworkPolicy":
        # A Cilium policy holds one rule set in `spec` and any number more in `specs`.
        rule_sets = [("spec", manifest.get("spec"))] + [(f"specs[{i}]", r) for i, r in enumerate(as_list(manifest.get("specs")))]
        for where, rule_set in rule_sets:
            for index, rule in enumerate(as_list(as_dict(rule_set).get("egress"))):
                for problem in _cilium_metadata_exposure(as_dict(rule)):
                    yield f"{where}.egress[{index}] {problem}"
        return
    if manifest.get("kind") == "NetworkPolicy":
        spec = as_dict(manifest.get("spec"))
        where = "spec.egress"
    else:
        spec = as_dict(dig(manifest, "spec", "networkPolicy"))
        where = "spec.networkPolicy.egress"
        for domain in str(annotations(manifest).get(ALLOWED_DOMAINS_ANNOTATION, "")).split(","):
            if _is_metadata_host(domain.strip()):
                yield f"allowed domain {domain.strip()!r} is a cloud metadata endpoint"
    for index, rule in enumerate(as_list(spec.get("egress"))):
        for problem in _metadata_exposure(as_dict(rule).get("to")):
            yield f"{where}[{index}] {problem}"


def _is_metadata_host(host: str) -> bool:
    if not host:
        return False
    if host.lower().rstrip(".") in METADATA_HOSTNAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in METADATA_NETWORKS)


# --- configuration hygiene -------------------------------------------------------------------


@FAMILY.object_rule(
    "sandbox-env-injection", severity="high", kinds={"SandboxTemplate"}, settings=("environment",),
    description="In prod, claims may not override a template's environment (envVarsInjectionPolicy: Overrides).",
    remediation="Use envVarsInjectionPolicy: Disallowed (default) or Allowed in prod stacks.",
    cel=lambda context: "object.?spec.?envVarsInjectionPolicy.orValue('') != 'Overrides'"
    if context.environment == "prod" else "true",
)
def env_injection(manifest: Manifest, context: Context) -> Iterator[str]:
    if context.environment == "prod" and dig(manifest, "spec", "envVarsInjectionPolicy") == "Overrides":
        yield "envVarsInjectionPolicy is Overrides: a claim could replace the template's environment in prod"


_SECRET_WORDS = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATEKEY"}
_KEY_QUALIFIERS = {"API", "ACCESS", "SECRET", "PRIVATE", "SIGNING", "ENCRYPTION", "AUTH", "CLIENT"}
_NOT_A_VALUE = {"FILE", "PATH", "DIR", "URL", "URI", "ENDPOINT", "NAME", "HEADER", "TYPE", "REF", "ENABLED", "TTL"}
_SECRET_VALUES = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|sk-[A-Za-z0-9_-]{20,}"  # OpenAI-style API keys
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"  # URL with user:password
)


def looks_like_credential(name: str, value: str) -> bool:
    if not value:
        return False
    if _SECRET_VALUES.search(value):
        return True
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if not words or words[-1] in _NOT_A_VALUE:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(a in _KEY_QUALIFIERS and b == "KEY" for a, b in itertools.pairwise(words))


def _env_no_credentials_cel() -> str:
    """looks_like_credential in CEL: the name's words as regexes over the upper-cased name."""
    sep, start, end = "[^A-Z0-9]", "(^|[^A-Z0-9])", "([^A-Z0-9]|$)"
    secret_word = f"{start}{alternation(_SECRET_WORDS)}{end}"
    not_a_value = f"{start}{alternation(_NOT_A_VALUE)}{sep}*$"
    qualified_key = f"{start}{alternation(_KEY_QUALIFIERS)}{sep}+KEY{end}"
    name = "e.?name.orValue('').upperAscii()"
    credential = (f"e.value != '' && (e.value.matches({literal(_SECRET_VALUES.pattern)})"
                  f" || ({name}.matches('[A-Z0-9]') && !{name}.matches({literal(not_a_value)})"
                  f" && ({name}.matches({literal(secret_word)}) || {name}.matches({literal(qualified_key)}))))")
    envs = ("(object.kind == 'SandboxClaim' ? [object.?spec.?env.orValue([])]"
            " : variables.containers.map(c, c.?env.orValue([])))")
    return f"{envs}.all(env, env.all(e, !has(e.value) || !({credential})))"


@FAMILY.object_rule(
    "workload-env-no-credentials", severity="high", kinds=POD_KINDS | {"SandboxClaim"},
    description="No literal environment values that look like credentials: they end up in manifests, state and logs.",
    remediation="Move the value into a Secret and reference it with valueFrom.secretKeyRef (templates[].env[].secretKeyRef).",
    cel=_env_no_credentials_cel(),
)
def env_no_credentials(manifest: Manifest, context: Context) -> Iterator[str]:
    for where, env in env_vars(manifest):
        name, value = str(env.get("name", "")), env.get("value")
        if isinstance(value, str) and looks_like_credential(name, value):
            yield f"{where}: env {name} holds a literal value that looks like a credential"


ALLOWED_RESERVED_KEYS = frozenset({"kubevirt.io/domain"})
"""Reserved keys that sandbox manifests legitimately set: KubeVirt documents `kubevirt.io/domain`
on a VM template as the label a Service selects the virt-launcher pod by."""

WRITTEN_BY_THE_STACK = ("sandbox-infra.dev", "pulumi.com")
"""Domains the builders write on what a stack deploys (templates, pools, VMs): our own intent
and Pulumi's await controls."""

REQUESTED_KINDS = frozenset({"Sandbox", "SandboxClaim"})
"""Kinds a stack never deploys: gateways create claims, the controller creates sandboxes. On
them every reserved domain is refused, our own and Pulumi's included (a claim stamping
`sandbox-infra.dev/template` on its pod would be selected by another template's network policy;
a Sandbox carrying `sandbox-infra.dev/trust` would skip the runtime-class rule)."""

CLIENT_CLAIM_KEYS = {
    "metadata.labels": frozenset({"agents.x-k8s.io/created-by"}),
    "metadata.annotations": frozenset({"agents.x-k8s.io/client-first-requested-at"}),
}
"""What the official client (`k8s-agent-sandbox` 1.0.8, constants CREATED_BY_LABEL and
CLIENT_REQUEST_TIME_ANNOTATION) writes on every SandboxClaim's own metadata: exactly these keys,
in exactly these maps, pass. They describe the claim; the pod never sees them."""


def reserved_key_problem(key: str, kind: str = "", where: str = "") -> str | None:
    """The reserved domain `key` may not use at `where` (a metadata_maps location) of a `kind`, or None."""
    domain = reserved_domain(key)
    if domain is None or key.startswith("app.kubernetes.io/"):
        return None  # the recommended labels carry no controller meaning
    if kind in REQUESTED_KINDS:
        allowed = CLIENT_CLAIM_KEYS.get(where, frozenset()) if kind == "SandboxClaim" else frozenset()
        return None if key in allowed else domain
    if domain in WRITTEN_BY_THE_STACK or key in ALLOWED_RESERVED_KEYS:
        return None
    return domain


def _reserved_metadata_cel() -> str:
    """reserved_key_problem over metadata_maps, in CEL. On UPDATE, a key the object's own metadata
    (and a Sandbox's or claim's pod metadata) already carried with the same value is not judged
    again: the request did not write it (the controller did), so labelling a controller-made
    Sandbox, or the garbage collector removing a finalizer, is not refused for the controller's
    keys. Offline every object is judged as created."""

    def pattern(domains: list[str]) -> str:
        return literal("^([^/]*\\.)?" + alternation(domains) + "/")

    def clean(maps: list[str], rule: str, allowed: frozenset[str] = frozenset()) -> str:
        extra = f" || k in {literal(allowed)}" if allowed else ""
        listed = ", ".join(f"{m}.orValue({{}})" for m in maps)
        return f"[{listed}].all(m, m.all(k, !k.matches({rule}) || k.startsWith('app.kubernetes.io/'){extra}))"

    def kept(new: str, old: str, field: str, rule: str, allowed: frozenset[str] = frozenset()) -> str:
        """Every reserved key of the map at `new` is allowed, or (UPDATE) was already at `old` unchanged."""
        extra = f" || k in {literal(allowed)}" if allowed else ""
        return (f"[[{new}.?{field}.orValue({{}}), oldObject == null ? {{}} : {old}.?{field}.orValue({{}})]]"
                f".all(p, p[0].all(k, !k.matches({rule}) || k.startsWith('app.kubernetes.io/'){extra}"
                " || (k in p[1] && p[1][k] == p[0][k])))")

    def own(field: str, rule: str, allowed: frozenset[str] = frozenset()) -> str:
        return kept("object.?metadata", "oldObject.?metadata", field, rule, allowed)

    stack_pattern = pattern([d for d in RESERVED_KEY_DOMAINS if d not in WRITTEN_BY_THE_STACK])
    every_pattern = pattern(list(RESERVED_KEY_DOMAINS))
    pool = "object.?spec.?virtualMachineTemplate.?metadata"
    deployed = " && ".join([
        own("labels", stack_pattern, ALLOWED_RESERVED_KEYS), own("annotations", stack_pattern, ALLOWED_RESERVED_KEYS),
        clean(["variables.podMeta.?labels", "variables.podMeta.?annotations",
               "variables.vmiMeta.?labels", "variables.vmiMeta.?annotations"], stack_pattern, ALLOWED_RESERVED_KEYS)])
    deployed += (f" && (object.kind != 'VirtualMachinePool'"
                 f" || {clean([f'{pool}.?labels', f'{pool}.?annotations'], stack_pattern, ALLOWED_RESERVED_KEYS)})")
    def pod(where: str) -> str:  # a Sandbox's pod template is the controller's copy: judged like its own metadata
        return " && ".join(kept(f"object.?spec.?{where}", f"oldObject.?spec.?{where}", field, every_pattern)
                           for field in ("labels", "annotations"))

    client = " && ".join(own(where.removeprefix("metadata."), every_pattern, allowed)
                         for where, allowed in CLIENT_CLAIM_KEYS.items())
    sandbox = f"{own('labels', every_pattern)} && {own('annotations', every_pattern)}"
    requested = (f"object.kind == 'SandboxClaim' ? {client} && {pod('additionalPodMetadata')}"
                 f" : {sandbox} && {pod('podTemplate.?metadata')}")
    return f"object.kind in {literal(REQUESTED_KINDS)} ? ({requested}) : {deployed}"


@FAMILY.object_rule(
    "sandbox-reserved-metadata", severity="medium", kinds=SANDBOX_KINDS,
    description="Reserved label/annotation prefixes (agents.x-k8s.io, kubernetes.io, kubevirt.io, ...) stay "
                "untouched: the controllers read them to select and identify sandboxes. Claims and Sandboxes, "
                "which the stack never deploys, may not use sandbox-infra.dev or pulumi.com keys either.",
    remediation="Rename the key to your own domain (e.g. example.com/team); never set keys the controllers own "
                "(a claim may keep the official client's agents.x-k8s.io/created-by label and "
                "client-first-requested-at annotation).",
    cel=_reserved_metadata_cel(),
)
def reserved_metadata(manifest: Manifest, context: Context) -> Iterator[str]:
    kind = str(manifest.get("kind", ""))
    for where, values in metadata_maps(manifest):
        for key in values:
            domain = reserved_key_problem(str(key), kind, where)
            if domain is not None:
                yield f"{where}[{key}] uses the reserved prefix {domain!r}"


# --- pools -------------------------------------------------------------------------------


# Autoscalers resize a pool through its scale subresource, up to their own maximum: the
# field holding it, and its default where the API has one (KEDA's is 100, the HPA's is required).
AUTOSCALER_MAXIMUM: dict[str, tuple[str, int | None]] = {
    "HorizontalPodAutoscaler": ("maxReplicas", None),
    "ScaledObject": ("maxReplicaCount", 100),
}


def _warm_pool_cap_cel(cap: int) -> str:
    autoscalers = " : ".join(
        f"object.kind == {literal(kind)} ? object.?spec.?{field}.orValue({cap + 1 if default is None else default}) <= {cap}"
        for kind, (field, default) in AUTOSCALER_MAXIMUM.items())
    return (f"object.kind in {literal(WARM_POOL_KINDS)} ? object.?spec.?replicas.orValue(1) <= {cap}"
            f" : !(object.?spec.?scaleTargetRef.?kind.orValue('') in {literal(WARM_POOL_KINDS)}) || ({autoscalers} : true)")


@FAMILY.object_rule(
    "sandbox-warm-pool-cap", severity="medium", kinds=WARM_POOL_KINDS | set(AUTOSCALER_MAXIMUM),
    settings=("max_warm_pool_replicas",),
    description="Warm-pool replicas stay within the stack's cap (policy.maxWarmPoolReplicas), and so does the "
                "maximum of any autoscaler (HPA, KEDA ScaledObject) that resizes a pool.",
    remediation="Lower replicas (or the autoscaler's maxReplicas / maxReplicaCount, e.g. a lower "
                "slo.autoscaling.maxClaimRate), or raise policy.maxWarmPoolReplicas for the stack deliberately.",
    cel=lambda context: _warm_pool_cap_cel(context.policy.max_warm_pool_replicas),
)
def warm_pool_cap(manifest: Manifest, context: Context) -> Iterator[str]:
    cap = context.policy.max_warm_pool_replicas
    kind = manifest.get("kind")
    if kind in WARM_POOL_KINDS:
        field, default, target = "replicas", 1, ""  # both CRDs default to one replica
    else:
        pool = as_dict(dig(manifest, "spec", "scaleTargetRef"))
        if pool.get("kind") not in WARM_POOL_KINDS:
            return  # it scales something else (a Deployment, ...)
        field, default = AUTOSCALER_MAXIMUM[str(kind)]
        target = f" (it scales {pool['kind']} {pool.get('name', '?')})"
    value = dig(manifest, "spec", field)
    replicas = default if value is None else value
    if isinstance(replicas, bool) or not isinstance(replicas, int | float) or replicas > cap:
        shown = value if value is not None else f"unset (default {default})" if default is not None else "unset"
        yield f"spec.{field} is {shown}, above the stack's cap of {cap}{target}"


def is_gpu_resource(name: str) -> bool:
    return "gpu" in name  # nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915, ...


def requests_gpus(manifest: Manifest) -> bool:
    if any(is_gpu_resource(name) for pod in pod_specs(manifest) for name in resource_names(pod)):
        return True
    return any(
        as_list(dig(vmi.spec, "domain", "devices", "gpus"))
        or any(is_gpu_resource(str(n)) for section in ("requests", "limits")
               for n in as_dict(dig(vmi.spec, "domain", "resources", section)))
        for vmi in vmi_specs(manifest)
    )


@FAMILY.stack_rule(
    "sandbox-gpu-pool-opt-in", severity="medium",
    description="Warm pools of GPU sandboxes only with an explicit opt-in: idle GPUs are expensive.",
    remediation=f"Set allowGpu: true on the warm pool (sets the {GPU_OPT_IN_ANNOTATION} annotation), or drop the GPU request.",
)
def gpu_pool_opt_in(manifests: list[Manifest], context: Context) -> Iterator[tuple[int, Violation | str]]:
    templates = {
        (dig(m, "metadata", "namespace"), dig(m, "metadata", "name")): m
        for m in manifests if m.get("kind") == "SandboxTemplate"
    }
    for index, manifest in enumerate(manifests):
        if manifest.get("kind") not in WARM_POOL_KINDS or annotations(manifest).get(GPU_OPT_IN_ANNOTATION) == "true":
            continue
        if manifest.get("kind") == "SandboxWarmPool":
            ref = dig(manifest, "spec", "sandboxTemplateRef", "name")
            template = templates.get((dig(manifest, "metadata", "namespace"), ref))
            if template is not None and requests_gpus(template):
                yield index, f"pool of GPU template {describe(template)} has no {GPU_OPT_IN_ANNOTATION}: 'true' opt-in"
        elif requests_gpus(manifest):
            yield index, f"pool of GPU virtual machines has no {GPU_OPT_IN_ANNOTATION}: 'true' opt-in"
