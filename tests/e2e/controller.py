"""Run the real agent-sandbox controller out of cluster against the e2e control plane.

The v0.5.6 CRDs convert between v1alpha1 and v1beta1 through the controller's
webhook, addressed as a Service (`agent-sandbox-webhook-service` in
`agent-sandbox-system`). Out of cluster there is no pod behind that Service and no
kube-proxy to reach one, so the API server could not call it. Instead the controller
serves the webhook on a loopback port with a certificate from the e2e CA
(`--manage-webhook-certs=false`), and each CRD's conversion `clientConfig` is pointed
at `https://127.0.0.1:<port>/convert` with that CA: a URL client config, which the
CRD API allows exactly for webhooks running outside the cluster. The controller's
own cert management is off because it would patch the CRDs back to the Service.

Serving another control plane's conversion (an upgrade, where `pulumi up` writes the
new CRDs with their Service client config while the controller runs) uses a
MutatingAdmissionPolicy there: every write of those CRDs is pointed at the loopback URL
in the same request, so no object is ever read through the unreachable Service. (A
thread that re-pointed them after each write lost the race on a loaded machine: the
template update that needed conversion came first.)
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from .controlplane import ControlPlane, free_port, stop
from .kube import Kube, Manifest, apply_all, wait_for
from .toolchain import binary

CRDS = (
    "sandboxes.agents.x-k8s.io",
    "sandboxclaims.extensions.agents.x-k8s.io",
    "sandboxtemplates.extensions.agents.x-k8s.io",
    "sandboxwarmpools.extensions.agents.x-k8s.io",
)


def point_conversion_at(kube: Kube, url: str, ca_pem: bytes) -> None:
    for name in CRDS:
        crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        conversion = crd["spec"].get("conversion", {})
        if conversion.get("strategy") != "Webhook" or conversion["webhook"]["clientConfig"].get("url") == url:
            continue
        kube.patch("apiextensions.k8s.io/v1", "CustomResourceDefinition", name, None, {"spec": {"conversion": {
            "strategy": "Webhook",
            "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {"service": None, "url": url, "caBundle": base64.b64encode(ca_pem).decode()},
            },
        }}})


POLICY = "e2e-agent-sandbox-conversion-at-loopback"


def conversion_policy(url: str, ca_pem: bytes) -> list[Manifest]:
    """A MutatingAdmissionPolicy and its binding: each create or update of an agent-sandbox CRD
    whose conversion is a webhook gets the client config `url` with `ca_pem`, whatever it named."""
    client_config = (f"Object.spec.conversion.webhook.clientConfig{{url: {json.dumps(url)}, "
                     f"caBundle: bytes({json.dumps(ca_pem.decode())})}}")
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apiextensions.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["customresourcedefinitions"], "resourceNames": list(CRDS),
            }]},
            "matchConditions": [{"name": "webhook-conversion", "expression":
                                 "has(object.spec.conversion) && object.spec.conversion.strategy == 'Webhook'"}],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": (
                f'[JSONPatch{{op: "replace", path: "/spec/conversion/webhook/clientConfig", value: {client_config}}}]'
            )}}],
        },
    }
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicyBinding",
               "metadata": {"name": POLICY}, "spec": {"policyName": POLICY}}
    return [policy, binding]


@contextlib.contextmanager
def conversion_pointed_at(kube: Kube, url: str, ca_pem: bytes, probe: Manifest) -> Iterator[None]:
    """While inside, `kube`'s agent-sandbox CRDs convert through `url` (conversion_policy), also
    when written anew. `probe`: one of those CRDs as applied with a Service client config; a
    dry run of it shows when the API server has loaded the policy (about a second after)."""
    policy = conversion_policy(url, ca_pem)
    apply_all(kube, policy)
    try:
        wait_for("the conversion policy to take effect", lambda: kube.apply(probe, dry_run=True)["spec"]["conversion"]
                 ["webhook"]["clientConfig"].get("url") == url, timeout=30)
        point_conversion_at(kube, url, ca_pem)
        yield
    finally:
        for manifest in reversed(policy):
            kube.delete(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


@contextlib.contextmanager
def agent_sandbox_controller(plane: ControlPlane, extra_args: tuple[str, ...] = (),
                             conversion_for: Kube | None = None,
                             kubeconfig: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start the controller (extensions on) and wait until it serves; CRDs must exist.

    `kubeconfig`: the identity it runs as (default: the admin's). A token of its own
    ServiceAccount makes it act as in a cluster: its ClusterRole limits it, and admission
    policies that exempt the controllers see its requests as theirs.

    `conversion_for`: another API server whose CRDs this controller's webhook converts for.
    While the controller runs, their conversion is pointed at its loopback webhook, also
    when `pulumi up` applies new CRDs (an upgrade; see the module's docstring), as the
    controller's own certificate management injects its CA in a cluster. Conversion is stateless, so a
    controller that runs against a second control plane can serve it for the first one,
    whose CRDs it could not start on before the upgrade.
    """
    certs = plane.workdir / "webhook-certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(plane.pki / "webhook.crt", certs / "tls.crt")
    shutil.copy(plane.pki / "webhook.key", certs / "tls.key")
    webhook_port, probe_port = free_port(), free_port()
    point_conversion_at(plane.client(), f"https://127.0.0.1:{webhook_port}/convert", (plane.pki / "ca.crt").read_bytes())

    log = plane.workdir / "logs" / "agent-sandbox-controller.log"
    process = subprocess.Popen([
        str(binary("agent-sandbox-controller")), "--extensions", "--leader-elect=false",
        "--manage-webhook-certs=false", f"--webhook-cert-dir={certs}", f"--webhook-port={webhook_port}",
        "--metrics-bind-address=0", f"--health-probe-bind-address=127.0.0.1:{probe_port}", *extra_args,
    ], env={**plane.env(), **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"agent-sandbox-controller exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent-sandbox-controller not ready after 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        if conversion_for is None:
            yield process
            return
        url, ca = f"https://127.0.0.1:{webhook_port}/convert", (plane.pki / "ca.crt").read_bytes()
        probe = plane.client().get("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRDS[0])
        probe = {"apiVersion": probe["apiVersion"], "kind": probe["kind"], "metadata": {"name": CRDS[0]},
                 "spec": {**probe["spec"], "conversion": {"strategy": "Webhook", "webhook": {
                     "conversionReviewVersions": ["v1"],
                     "clientConfig": {"service": {"name": "agent-sandbox-webhook-service",
                                                  "namespace": "agent-sandbox-system", "path": "/convert"}}}}}}
        with conversion_pointed_at(conversion_for, url, ca, probe):
            yield process
    finally:
        stop(process)


def controller_log(plane: ControlPlane) -> str:
    path: Path = plane.workdir / "logs" / "agent-sandbox-controller.log"
    return path.read_text() if path.exists() else ""
