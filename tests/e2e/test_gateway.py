"""The stack serves its real client: a gateway using the official agent-sandbox Python client
(`k8s-agent-sandbox`), holding only the token of the ServiceAccount the stack binds, claims
warm sandboxes from what `pulumi up` deployed, and can do nothing more.

Deployed through the real engine (`pulumi up` of tests/e2e/stacks/Pulumi.gateway.yaml: two
tenants, their gateway bindings and warm pools, the runtime catalogue) on a fresh control
plane; then the real agent-sandbox controller runs out of cluster and fake_node.py plays
kubelet and kube-controller-manager. The verbs the gateway may use are written down once
(docs/gateway.md, GATEWAY_ACCESS); every check here is derived from that list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version as installed_version

import pytest
from k8s_agent_sandbox import SandboxClient
from k8s_agent_sandbox.constants import (
    CLAIM_API_GROUP,
    CLAIM_API_VERSION,
    CLIENT_REQUEST_TIME_ANNOTATION,
    CREATED_BY_LABEL,
)
from kubernetes.client import ApiException
from sandbox_policy.admission import RULE_ANNOTATION

from components.manifests.agent_sandbox import NAMESPACE as AGENT_SANDBOX_NAMESPACE
from components.manifests.catalogue import CATALOGUE_KEY
from components.manifests.tenant import GATEWAY_ACCESS, GATEWAY_CATALOGUE_VERBS
from components.specs.base import RESERVED_KEY_DOMAINS
from components.upstream import UpstreamLoader, agent_sandbox_file

from .controller import agent_sandbox_controller
from .controlplane import ControlPlane
from .fake_node import FakeControllerManager, FakeKubelet
from .gateway import GatewayIdentity, gateway_identity
from .helpers import require
from .kube import ApiError, Kube, wait_for
from .pulumi_project import FIXTURES, PULUMI, make_project
from .warm_pool_env import EXTENSIONS, SANDBOXES, WarmPoolEnv

CLIENT = f"k8s-agent-sandbox {installed_version('k8s-agent-sandbox')}"
STACK = "gateway"
TENANT, OTHER_TENANT = "agents-a", "agents-b"
GATEWAY_SA = "agent-gateway"
POOL, OTHER_POOL = "python", "python-b"
CATALOGUE_NAMESPACE, CATALOGUE = "sandbox-catalogue", "runtime-catalogue"
KUBEVIRT_NAMESPACE = "kubevirt"  # where KubeVirt's release manifest installs it (a reserved namespace here)
# The session identity the gateway stamps on a sandbox's pod (OpenShell RFC 0005).
IDENTITY_ANNOTATION = "openshell.io/sandbox-id"
CONTROLLER_SA = "agent-sandbox-controller"  # upstream's controller.yaml
RESERVED_RULE = "sandbox-reserved-metadata"


def client_unsupported_reason(release: str) -> str | None:
    """Why the official client cannot claim on this agent-sandbox release, from the release's own
    SandboxClaim CRD (None when it can)."""
    crd = UpstreamLoader().read_documents(
        agent_sandbox_file(release, f"crds/{CLAIM_API_GROUP}_sandboxclaims.yaml"))[0]
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    if CLAIM_API_VERSION in served:
        return None
    return (f"{CLIENT} creates SandboxClaims only as {CLAIM_API_GROUP}/{CLAIM_API_VERSION} with spec.warmPoolRef; "
            f"agent-sandbox {release} serves only {', '.join(served)}, whose claims name the pool in other fields "
            f"(spec.warmpool, spec.sandboxTemplateRef), so this client cannot claim there")


@dataclass
class Deployed:
    plane: ControlPlane
    pools: WarmPoolEnv  # admin's view, for waiting and checking
    gateway: GatewayIdentity
    other_gateway: GatewayIdentity
    up_seconds: float


@pytest.fixture(scope="module", params=["v0.4.6", "v0.5.6"])
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    release = request.param
    reason = client_unsupported_reason(release)
    if reason:
        pytest.skip(reason)
    require("etcd", "kube-apiserver", "agent-sandbox-controller", *PULUMI)
    plane: ControlPlane = request.getfixturevalue("plane")
    project = make_project(tmp_path_factory.mktemp("project"), plane, (STACK,),
                           extra_stack_files=(FIXTURES / f"Pulumi.{STACK}.yaml",))
    project.config(STACK, "agentSandbox.version", release)
    manifests = project.rendered(STACK)
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    kube = plane.client()
    # Namespaces need their `default` ServiceAccount and quota status before pods can be admitted.
    with FakeControllerManager(kube, namespaces):
        started = time.perf_counter()
        project.pulumi("up", "--yes", "--skip-preview", stack=STACK)
        up_seconds = time.perf_counter() - started
        print(f"\npulumi up of the {STACK} stack (agent-sandbox {release}): {up_seconds:.1f} s")
        # The stack binds the gateway ServiceAccounts; their tokens are all the tests use from here on.
        gateway = gateway_identity(plane, TENANT, GATEWAY_SA)
        other = gateway_identity(plane, OTHER_TENANT, GATEWAY_SA)
        # The controller runs as the ServiceAccount the stack installs for it, as in a cluster: its
        # ClusterRole, and the admission policies' exemption for the controllers, apply to it.
        controller = gateway_identity(plane, AGENT_SANDBOX_NAMESPACE, CONTROLLER_SA)
        with agent_sandbox_controller(plane, kubeconfig=controller.kubeconfig), FakeKubelet(kube):
            yield Deployed(plane, WarmPoolEnv(plane, kube, manifests), gateway, other, up_seconds)


def _full(deployed: Deployed) -> set[str]:
    """Wait until tenant A's pool has all its replicas Ready; their names."""
    replicas = next(m for m in deployed.pools.manifests if m["kind"] == "SandboxWarmPool"
                    and m["metadata"]["name"] == POOL)["spec"]["replicas"]
    wait_for(f"warm pool {POOL} full", lambda: len(deployed.pools.ready_pool_sandboxes(POOL, TENANT)) >= replicas,
             timeout=90)
    return {s["metadata"]["name"] for s in deployed.pools.ready_pool_sandboxes(POOL, TENANT)}


def _gone(kube: Kube, api_version: str, kind: str, name: str, namespace: str) -> None:
    wait_for(f"{kind} {name} to be deleted", lambda: not kube.exists(api_version, kind, name, namespace), timeout=60)


def _pod_of(kube: Kube, sandbox: str, namespace: str) -> dict:
    # A sandbox's pod has its name (the controller's default; the client's get_pod_name says the same).
    return kube.get("v1", "Pod", sandbox, namespace)


# --- 1. the gateway's job, with the official client and only its token ------------------------

def test_the_gateway_claims_a_warm_sandbox_the_pool_refills_and_deleting_the_claim_removes_it(
        deployed: Deployed) -> None:
    admin = deployed.pools.kube
    warm = _full(deployed)
    with SandboxClient(api_client=deployed.gateway.api_client()) as client:
        started = time.perf_counter()
        sandbox = client.create_sandbox(warmpool=POOL, namespace=TENANT, sandbox_ready_timeout=60)
        print(f"\n{CLIENT}: create_sandbox(warmpool={POOL!r}) returned in {(time.perf_counter() - started) * 1000:.0f} ms "
              f"with sandbox {sandbox.sandbox_id} (warm: {sorted(warm)})")
        assert sandbox.sandbox_id in warm, "the claim got a cold sandbox, not a pre-warmed one"
        # The gateway reads the Sandbox that backs its claim (get on sandboxes).
        assert sandbox.status()[0] == "SandboxReady"
        assert sandbox.get_pod_name() == sandbox.sandbox_id
        owners = admin.get(SANDBOXES, "Sandbox", sandbox.sandbox_id, TENANT)["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"]) for o in owners] == [("SandboxClaim", sandbox.claim_name)]
        assert client.list_all_sandboxes(namespace=TENANT) == [sandbox.claim_name]

        # The claimed sandbox left the pool, which warms a replacement.
        assert sandbox.sandbox_id not in _full(deployed)

        claim = sandbox.claim_name
        # The stack's admission policies enforce, and the client's own reserved keys passed them.
        stored = admin.get(EXTENSIONS, "SandboxClaim", claim, TENANT)["metadata"]
        assert stored["labels"][CREATED_BY_LABEL] == "python-client"
        assert CLIENT_REQUEST_TIME_ANNOTATION in stored["annotations"]
        assert _reserved_metadata_actions(admin) == ["Deny"]
        client.delete_sandbox(claim, namespace=TENANT)
    _gone(admin, EXTENSIONS, "SandboxClaim", claim, TENANT)
    _gone(admin, SANDBOXES, "Sandbox", sandbox.sandbox_id, TENANT)
    _gone(admin, "v1", "Pod", sandbox.sandbox_id, TENANT)


# --- 3. identity reaches the pod; reserved prefixes ---------------------------------------------

def test_the_session_identity_on_a_claim_reaches_the_bound_pod(deployed: Deployed) -> None:
    session = "session-7f3a9c"
    warm = _full(deployed)
    with SandboxClient(api_client=deployed.gateway.api_client()) as client:
        sandbox = client.create_sandbox(warmpool=POOL, namespace=TENANT, sandbox_ready_timeout=60,
                                        pod_annotations={IDENTITY_ANNOTATION: session})
        assert sandbox.sandbox_id in warm
        # The warm pod existed before the session did: the controller stamps the claim's metadata on it.
        pod = wait_for("the identity annotation on the bound pod", lambda: (
            p := _pod_of(deployed.pools.kube, sandbox.sandbox_id, TENANT))["metadata"].get("annotations", {}).get(
            IDENTITY_ANNOTATION) == session and p, timeout=30)
        print(f"\npod {pod['metadata']['name']}: {IDENTITY_ANNOTATION}={session}")
    # Leaving the `with` block deletes the client's claims (generated names are the client's own).
    _gone(deployed.pools.kube, SANDBOXES, "Sandbox", sandbox.sandbox_id, TENANT)


def _reserved_metadata_actions(admin: Kube) -> list[str]:
    """What the stack's binding of the reserved-metadata policy does with a violation."""
    bindings = [b for b in admin.list("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding")["items"]
                if b["metadata"].get("annotations", {}).get(RULE_ANNOTATION) == RESERVED_RULE]
    assert len(bindings) == 1, [b["metadata"]["name"] for b in bindings]
    return bindings[0]["spec"]["validationActions"]


@pytest.mark.parametrize("kind", ["annotation", "label"])
def test_a_claim_setting_a_reserved_prefix_on_its_pod_is_refused_at_admission(deployed: Deployed, kind: str) -> None:
    """Every reserved domain (RESERVED_KEY_DOMAINS), on the claim's pod metadata, is refused by the
    stack's enforcing admission policy with the rule id in the message, before the controller sees
    the claim: no claim is stored and the pool keeps every warm sandbox. That includes the annotation
    domains the controller itself lets through to the pod (x-k8s.io, kubevirt.io, pulumi.com,
    sandbox-infra.dev; docs/gateway.md)."""
    admin, outcomes = deployed.pools.kube, []
    assert _reserved_metadata_actions(admin) == ["Deny"]
    with SandboxClient(api_client=deployed.gateway.api_client()) as client:
        for domain in RESERVED_KEY_DOMAINS:
            key = f"{domain}/session"
            metadata = {"pod_annotations": {key: "x"}} if kind == "annotation" else {"pod_labels": {key: "x"}}
            before = _full(deployed)
            claims = {c["metadata"]["name"] for c in admin.list(EXTENSIONS, "SandboxClaim", TENANT)["items"]}
            with pytest.raises(ApiException) as refused:
                client.create_sandbox(warmpool=POOL, namespace=TENANT, sandbox_ready_timeout=30, **metadata)
            assert refused.value.status == 403, refused.value
            message = json.loads(refused.value.body)["message"]
            assert f"{RESERVED_RULE}: " in message, message
            assert {c["metadata"]["name"] for c in admin.list(EXTENSIONS, "SandboxClaim", TENANT)["items"]} == claims
            assert {s["metadata"]["name"] for s in deployed.pools.ready_pool_sandboxes(POOL, TENANT)} == before
            outcomes.append(f"{kind} {key}: 403 {message[message.index(RESERVED_RULE + ': '):][:90]}...")
    print("\n" + "\n".join(outcomes))


# --- 2. least privilege, live -------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    what: str
    verb: str
    api_version: str
    kind: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    body: Callable[[Kube], dict] | None = None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def send(self, kube: Kube, admin: Kube, dry_run: bool = False) -> object:
        """Send as `kube`; a body is built from what `admin` reads (the gateway may not read pods)."""
        resource = kube.resource(self.api_version, self.kind)
        path = resource.url(self.namespace, self.name, self.subresource)
        method, content_type = {"get": ("GET", None), "list": ("GET", None), "create": ("POST", None),
                                "update": ("PUT", None), "delete": ("DELETE", None),
                                "patch": ("PATCH", "application/merge-patch+json")}[self.verb]
        params: dict[str, str] = {"dryRun": "All"} if dry_run and method != "GET" else {}
        if self.subresource == "exec":
            params.update(command="true", stdout="true")
        body = self.body(admin) if self.body else None
        return kube.request(method, path, body=body, params=params,
                            content_type=content_type or "application/json")

    def resource_name(self, kube: Kube) -> str:
        return kube.resource(self.api_version, self.kind).plural


def _labelled(api_version: str, kind: str, name: str, namespace: str) -> Callable[[Kube], dict]:
    """The live object with one label added, for an update (PUT)."""
    def body(admin: Kube) -> dict:
        live = admin.get(api_version, kind, name, namespace)
        live["metadata"].setdefault("labels", {})["tampered"] = "true"
        return live
    return body


def _forbidden_attempts(pod: str, sandbox: str, template_pod: dict) -> list[Attempt]:
    """`template_pod`: the stack's own hardened pod spec, so that a create the admin may send is
    admitted (Pod Security `restricted`, quota) and only RBAC stands in the gateway's way."""
    label = {"metadata": {"labels": {"tampered": "true"}}}
    return [
        Attempt("patch a pod", "patch", "v1", "Pod", TENANT, pod, body=lambda _: label),
        Attempt("update a pod", "update", "v1", "Pod", TENANT, pod, body=_labelled("v1", "Pod", pod, TENANT)),
        Attempt("delete a pod", "delete", "v1", "Pod", TENANT, pod),
        Attempt("exec into a pod", "create", "v1", "Pod", TENANT, pod, subresource="exec"),
        Attempt("create a pod", "create", "v1", "Pod", TENANT, body=lambda _: {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rogue"}, "spec": template_pod}),
        Attempt("read a Secret", "get", "v1", "Secret", TENANT, "gateway-probe"),
        Attempt("list Secrets", "list", "v1", "Secret", TENANT),
        Attempt("list ConfigMaps in its tenant", "list", "v1", "ConfigMap", TENANT),
        Attempt("read another ConfigMap next to the catalogue", "get", "v1", "ConfigMap", CATALOGUE_NAMESPACE,
                "gateway-probe"),
        Attempt("list the catalogue namespace's ConfigMaps", "list", "v1", "ConfigMap", CATALOGUE_NAMESPACE),
        Attempt("change the runtime catalogue", "patch", "v1", "ConfigMap", CATALOGUE_NAMESPACE, CATALOGUE,
                body=lambda _: label),
        Attempt("create a Sandbox directly", "create", SANDBOXES, "Sandbox", TENANT, body=lambda _: {
            "apiVersion": SANDBOXES, "kind": "Sandbox", "metadata": {"name": "rogue"},
            "spec": {"podTemplate": {"spec": template_pod}}}),
        Attempt("patch a Sandbox", "patch", SANDBOXES, "Sandbox", TENANT, sandbox, body=lambda _: label),
        Attempt("delete a Sandbox", "delete", SANDBOXES, "Sandbox", TENANT, sandbox),
        Attempt("patch a SandboxTemplate", "patch", EXTENSIONS, "SandboxTemplate", TENANT, POOL, body=lambda _: label),
        Attempt("update a SandboxTemplate", "update", EXTENSIONS, "SandboxTemplate", TENANT, POOL,
                body=_labelled(EXTENSIONS, "SandboxTemplate", POOL, TENANT)),
        Attempt("delete a SandboxTemplate", "delete", EXTENSIONS, "SandboxTemplate", TENANT, POOL),
        Attempt("create a SandboxTemplate", "create", EXTENSIONS, "SandboxTemplate", TENANT, body=lambda _: {
            "apiVersion": EXTENSIONS, "kind": "SandboxTemplate", "metadata": {"name": "rogue"},
            "spec": {"podTemplate": {"spec": template_pod}}}),
        Attempt("patch a SandboxWarmPool", "patch", EXTENSIONS, "SandboxWarmPool", TENANT, POOL,
                body=lambda _: {"spec": {"replicas": 5}}),
        Attempt("update a SandboxWarmPool", "update", EXTENSIONS, "SandboxWarmPool", TENANT, POOL,
                body=_labelled(EXTENSIONS, "SandboxWarmPool", POOL, TENANT)),
        Attempt("scale a SandboxWarmPool", "patch", EXTENSIONS, "SandboxWarmPool", TENANT, POOL, subresource="scale",
                body=lambda _: {"spec": {"replicas": 5}}),
        Attempt("delete a SandboxWarmPool", "delete", EXTENSIONS, "SandboxWarmPool", TENANT, POOL),
        Attempt("update a claim", "patch", EXTENSIONS, "SandboxClaim", TENANT, "probe-claim", body=lambda _: label),
        Attempt("claim in another tenant", "create", EXTENSIONS, "SandboxClaim", OTHER_TENANT, body=lambda _: {
            "apiVersion": EXTENSIONS, "kind": "SandboxClaim", "metadata": {"name": "cross-tenant"},
            "spec": {"warmPoolRef": {"name": OTHER_POOL}}}),
        Attempt("list another tenant's claims", "list", EXTENSIONS, "SandboxClaim", OTHER_TENANT),
        Attempt("read another tenant's sandboxes", "list", SANDBOXES, "Sandbox", OTHER_TENANT),
        Attempt("read another tenant's pool", "get", EXTENSIONS, "SandboxWarmPool", OTHER_TENANT, OTHER_POOL),
        Attempt("list claims in every namespace", "list", EXTENSIONS, "SandboxClaim", None),
        Attempt("list pods in agent-sandbox-system", "list", "v1", "Pod", AGENT_SANDBOX_NAMESPACE),
        Attempt("list Secrets in agent-sandbox-system", "list", "v1", "Secret", AGENT_SANDBOX_NAMESPACE),
        Attempt("change the controller", "patch", "apps/v1", "Deployment", AGENT_SANDBOX_NAMESPACE,
                "agent-sandbox-controller", body=lambda _: {"spec": {"replicas": 0}}),
        Attempt("list pods in kubevirt", "list", "v1", "Pod", KUBEVIRT_NAMESPACE),
        Attempt("list Secrets in kubevirt", "list", "v1", "Secret", KUBEVIRT_NAMESPACE),
    ]


def test_every_forbidden_action_is_refused_for_real_and_the_api_server_agrees(deployed: Deployed) -> None:
    admin = deployed.pools.kube
    sandbox = sorted(_full(deployed))[0]
    # Things to try to read: a Secret in the tenant, another ConfigMap beside the catalogue, a claim.
    for namespace, kind in ((TENANT, "Secret"), (CATALOGUE_NAMESPACE, "ConfigMap")):
        admin.apply({"apiVersion": "v1", "kind": kind, "metadata": {"name": "gateway-probe", "namespace": namespace},
                     "data": {"k": "dg==" if kind == "Secret" else "v"}})
    admin.apply({"apiVersion": EXTENSIONS, "kind": "SandboxClaim", "metadata": {"name": "probe-claim", "namespace":
                 TENANT}, "spec": {"warmPoolRef": {"name": "no-such-pool"}}})
    gateway, lines = deployed.gateway.kube(), []
    template_pod = deployed.pools.first("SandboxTemplate")["spec"]["podTemplate"]["spec"]
    for attempt in _forbidden_attempts(sandbox, sandbox, template_pod):
        # The request itself is well-formed: the admin may send it (as a dry run; exec has no dry
        # run and stops at the missing stream upgrade, after authorization).
        try:
            attempt.send(admin, admin, dry_run=True)
        except ApiError as error:
            assert attempt.subresource == "exec" and error.status == 400, f"{attempt.what}: admin got {error}"
        with pytest.raises(ApiError) as refused:
            attempt.send(gateway, admin)
        assert refused.value.status == 403, f"{attempt.what}: {refused.value}"
        assert deployed.gateway.username in refused.value.message
        allowed = deployed.gateway.can(attempt.verb, attempt.resource_name(admin), attempt.group, attempt.namespace,
                                       attempt.name, attempt.subresource)
        assert not allowed, f"{attempt.what}: SelfSubjectAccessReview says allowed"
        lines.append(f"{attempt.what:<48} 403, SelfSubjectAccessReview allowed=false")
    # The pool, the template and the controller are as the stack left them.
    assert admin.get(EXTENSIONS, "SandboxWarmPool", POOL, TENANT)["spec"]["replicas"] == 2
    assert admin.exists("v1", "Pod", sandbox, TENANT)
    print("\n" + "\n".join(lines))


def test_the_official_client_of_one_tenant_cannot_claim_in_another(deployed: Deployed) -> None:
    def claims() -> set[str]:
        return {c["metadata"]["name"] for c in deployed.pools.kube.list(EXTENSIONS, "SandboxClaim", TENANT)["items"]}

    before = claims()
    with (SandboxClient(api_client=deployed.other_gateway.api_client()) as client,
          pytest.raises(ApiException) as refused):
        client.create_sandbox(warmpool=POOL, namespace=TENANT, sandbox_ready_timeout=30)
    assert refused.value.status == 403
    assert claims() == before
    print(f"\n{deployed.other_gateway.username} claiming in {TENANT}: {refused.value.status} {refused.value.reason}")


def _expected_tenant_rules() -> set[tuple[str, str, str, str]]:
    return {(group, resource, verb, "") for (group, resource), verbs in GATEWAY_ACCESS.items() for verb in verbs}


def test_the_token_may_do_exactly_what_the_list_says_and_nothing_anywhere_else(deployed: Deployed) -> None:
    gateway = deployed.gateway
    assert gateway.rules(TENANT) == _expected_tenant_rules()
    assert gateway.rules(CATALOGUE_NAMESPACE) == {("", "configmaps", verb, CATALOGUE) for verb in GATEWAY_CATALOGUE_VERBS}
    for namespace in (OTHER_TENANT, AGENT_SANDBOX_NAMESPACE, KUBEVIRT_NAMESPACE, "default", "kube-system"):
        assert gateway.rules(namespace) == set(), f"the gateway may act in {namespace}"
    # And each granted verb is really usable (SelfSubjectAccessReview, the same question RBAC answers).
    for group, resource, verb, _ in sorted(_expected_tenant_rules()):
        assert gateway.can(verb, resource, group, TENANT), f"{verb} {group}/{resource} should be allowed"
    assert gateway.can("get", "configmaps", "", CATALOGUE_NAMESPACE, CATALOGUE)
    assert gateway.kube().get("v1", "ConfigMap", CATALOGUE, CATALOGUE_NAMESPACE)["data"][CATALOGUE_KEY]
