"""The gateway's identity, held as a gateway holds it: a token for the ServiceAccount a stack
binds (from the TokenRequest API, as the kubelet projects one into the gateway's pod) and a
kubeconfig with only that token: no client certificate, no other user. Shared by
test_gateway.py and benchmarks/claim_latency.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from .controlplane import ControlPlane
from .kube import ApiError, Kube

AUTHORIZATION = "authorization.k8s.io/v1"


@dataclass(frozen=True)
class GatewayIdentity:
    namespace: str
    service_account: str
    kubeconfig: Path

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def api_client(self) -> kubernetes.client.ApiClient:
        """What the official client (`SandboxClient(api_client=...)`) runs on: built from the kubeconfig alone."""
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def kube(self) -> Kube:
        """The same credentials for the e2e REST client (to try what the official client never does)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        return Kube(cluster["server"], cluster["certificate-authority"], None, None, token=user["token"])

    def can(self, verb: str, resource: str, group: str = "", namespace: str | None = None,
            name: str | None = None, subresource: str | None = None) -> bool:
        """The API server's own answer (SelfSubjectAccessReview) to "may I?", asked with this token."""
        attributes = {k: v for k, v in {"verb": verb, "resource": resource, "group": group, "namespace": namespace,
                                        "name": name, "subresource": subresource}.items() if v is not None}
        review = self.kube().create({"apiVersion": AUTHORIZATION, "kind": "SelfSubjectAccessReview",
                                     "metadata": {}, "spec": {"resourceAttributes": attributes}})
        return bool(review["status"]["allowed"])

    def rules(self, namespace: str) -> set[tuple[str, str, str, str]]:
        """Every (group, resource, verb, resource name or '') this token may use in `namespace`
        (SelfSubjectRulesReview), minus what every authenticated user may do (system:basic-user:
        ask these very reviews)."""
        review = self.kube().create({"apiVersion": AUTHORIZATION, "kind": "SelfSubjectRulesReview",
                                     "metadata": {}, "spec": {"namespace": namespace}})
        return {(group, resource, verb, name)
                for rule in review["status"]["resourceRules"]
                for group in rule.get("apiGroups", [])
                if group not in ("authorization.k8s.io", "authentication.k8s.io")
                for resource in rule.get("resources", [])
                for verb in rule["verbs"]
                for name in rule.get("resourceNames") or [""]}


def gateway_identity(plane: ControlPlane, namespace: str, service_account: str,
                     expiration_seconds: int = 3600) -> GatewayIdentity:
    """Create the ServiceAccount (the gateway's own deployment does this; a stack only binds
    it), request a token for it and write a kubeconfig that holds nothing else."""
    admin = plane.client()
    try:
        admin.create({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": service_account, "namespace": namespace}})
    except ApiError as error:
        if error.status != 409:
            raise
    request: dict[str, Any] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": expiration_seconds}}
    path = admin.resource("v1", "ServiceAccount").url(namespace, service_account, "token")
    token = admin.request("POST", path, body=request)["status"]["token"]
    kubeconfig = plane.workdir / f"gateway-{namespace}-{service_account}.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gateway",
        "clusters": [{"name": "e2e", "cluster": {"server": plane.server,
                                                 "certificate-authority": str(plane.pki / "ca.crt")}}],
        "users": [{"name": "gateway", "user": {"token": token}}],
        "contexts": [{"name": "gateway", "context": {"cluster": "e2e", "user": "gateway", "namespace": namespace}}],
    }))
    return GatewayIdentity(namespace, service_account, kubeconfig)
