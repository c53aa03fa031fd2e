"""A small Kubernetes REST client for the e2e tests (mutual TLS with the admin certificate, or a
ServiceAccount token).

Only what the tests need: discovery, server-side apply, get/list/create/delete, the
status and binding subresources, and watches. `requests` was already in the lock
(pulumi-kubernetes needs it), so this adds no package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

Manifest = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer: `status` is the HTTP code, `message` the API server's own message."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.body = status, message, body or {}


@dataclass(frozen=True)
class Resource:
    path: str  # /api/v1 or /apis/group/version
    plural: str
    namespaced: bool

    def url(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        parts = [self.path]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


class Kube:
    def __init__(self, server: str, ca: str, cert: str | None, key: str | None,
                 field_manager: str = "sandbox-infra-e2e", *, token: str | None = None):
        """Authenticates with the client certificate (`cert`, `key`) or, instead, a bearer `token`."""
        self.server = server
        self.session = requests.Session()
        # Not the environment's CA bundle or proxies (REQUESTS_CA_BUNDLE would override `verify`).
        self.session.trust_env = False
        self.session.verify = ca
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.cert = (cert, key)
        self.field_manager = field_manager
        self._resources: dict[tuple[str, str], Resource] = {}

    # -- plumbing ------------------------------------------------------------------
    def request(self, method: str, path: str, *, body: Any = None, content_type: str = "application/json",
                params: dict[str, Any] | None = None, stream: bool = False, timeout: float = 30,
                accept: str = "application/json") -> Any:
        data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        for attempt in range(50):
            response = self.session.request(
                method, self.server + path, data=data, params=params, stream=stream, timeout=timeout,
                headers={"Content-Type": content_type, "Accept": accept},
            )
            # 429 with Retry-After: e.g. "storage is (re)initializing" just after a CRD is established.
            if response.status_code != 429 or attempt == 49:
                break
            response.close()
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0) / 5)
        if response.status_code >= 400:
            try:
                status = response.json()
            except ValueError:
                status = {"message": response.text}
            raise ApiError(response.status_code, status.get("message", response.text), status)
        if stream:
            return response
        return response.json() if response.headers.get("Content-Type", "").startswith("application/json") else response.text

    def resource(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        if key not in self._resources:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            for entry in self.request("GET", path)["resources"]:
                if "/" not in entry["name"]:
                    self._resources[(api_version, entry["kind"])] = Resource(path, entry["name"], entry["namespaced"])
            if key not in self._resources:
                raise ApiError(404, f"the server has no {kind} in {api_version}")
        return self._resources[key]

    def _resource_of(self, manifest: Manifest) -> Resource:
        return self.resource(manifest["apiVersion"], manifest["kind"])

    # -- verbs ---------------------------------------------------------------------
    def apply(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest:
        """Server-side apply with strict field validation: an unknown or misspelt field is an error,
        exactly as the API server's schema (built-in or CRD openAPIV3Schema) says."""
        meta = manifest["metadata"]
        params = {"fieldManager": self.field_manager, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        url = self._resource_of(manifest).url(meta.get("namespace"), meta["name"])
        # JSON is YAML, and json.dumps is C where yaml.safe_dump is pure Python: the tests apply
        # whole stacks (CRDs with their schemas) many times over.
        return self.request("PATCH", url, body=json.dumps(manifest), content_type="application/apply-patch+yaml",
                            params=params)

    def create(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest:
        params = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
        url = self._resource_of(manifest).url(manifest["metadata"].get("namespace"))
        return self.request("POST", url, body=manifest, params=params)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest:
        return self.request("GET", self.resource(api_version, kind).url(namespace, name))

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.get(api_version, kind, name, namespace)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def list(self, api_version: str, kind: str, namespace: str | None = None, **params: Any) -> Manifest:
        return self.request("GET", self.resource(api_version, kind).url(namespace), params=params)

    def another(self) -> Kube:
        """A client with the same credentials and its own connections (for a long-running watch)."""
        other = Kube(self.server, self.session.verify, None, None, self.field_manager)
        other.session.cert = self.session.cert
        other.session.headers.update(self.session.headers)
        return other

    def list_metadata(self, api_version: str, kind: str, namespace: str | None = None) -> Manifest:
        """The objects' metadata only (a PartialObjectMetadataList): for loops that poll owner
        references and finalizers, a fraction of the bytes of a full list (a CRD's schema, a
        policy's expressions) to encode on the server and decode here."""
        found = self.request("GET", self.resource(api_version, kind).url(namespace),
                             accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        return {**found, "items": found.get("items") or []}  # an empty one says `items: null`

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               grace_period: int | None = None, propagation: str | None = None) -> None:
        options = {"gracePeriodSeconds": grace_period, "propagationPolicy": propagation}
        body = {k: v for k, v in options.items() if v is not None} or None
        try:
            self.request("DELETE", self.resource(api_version, kind).url(namespace, name), body=body)
        except ApiError as error:
            if error.status != 404:
                raise

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: dict) -> Manifest:
        return self.request("PATCH", self.resource(api_version, kind).url(namespace, name, "status"),
                            body={"status": status}, content_type="application/merge-patch+json")

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict) -> Manifest:
        return self.request("PATCH", self.resource(api_version, kind).url(namespace, name),
                            body=patch, content_type="application/merge-patch+json")

    def finalize_namespace(self, namespace: Manifest) -> None:
        """What the namespace controller does once a namespace is empty: drop the `kubernetes` finalizer."""
        body = {**namespace, "spec": {**namespace.get("spec", {}), "finalizers": []}}
        self.request("PUT", f"/api/v1/namespaces/{namespace['metadata']['name']}/finalize", body=body)

    def bind(self, pod: Manifest, node: str) -> None:
        meta = pod["metadata"]
        self.request("POST", self.resource("v1", "Pod").url(meta["namespace"], meta["name"], "binding"), body={
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        })

    def watch(self, api_version: str, kind: str, namespace: str | None = None, *, resource_version: str = "",
              timeout: float = 300, accept: str = "application/json",
              opened: Callable[[requests.Response], None] | None = None, **params: Any) -> Iterator[tuple[str, Manifest]]:
        """Yield (event type, object) until the server closes the watch or `timeout` passes.
        `opened` gets the streaming response first (to end the watch from another thread)."""
        params = {"watch": "1", "allowWatchBookmarks": "false", "timeoutSeconds": int(timeout), **params}
        if resource_version:
            params["resourceVersion"] = resource_version
        url = self.resource(api_version, kind).url(namespace)
        with self.request("GET", url, params=params, stream=True, timeout=timeout + 10, accept=accept) as response:
            if opened:
                opened(response)
            for line in response.iter_lines():
                if line:
                    event = json.loads(line)
                    yield event["type"], event["object"]

    def watch_metadata(self, api_version: str, kind: str, namespace: str | None = None, *,
                       resource_version: str = "", timeout: float = 300,
                       opened: Callable[[requests.Response], None] | None = None) -> Iterator[tuple[str, Manifest]]:
        """`watch`, the objects' metadata only (PartialObjectMetadata)."""
        return self.watch(api_version, kind, namespace, resource_version=resource_version, timeout=timeout,
                          accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", opened=opened)


def condition(obj: Manifest, kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def is_true(obj: Manifest, kind: str) -> bool:
    found = condition(obj, kind)
    return bool(found and found["status"] == "True")


def wait_established(kube: Kube, crds: list[Manifest], timeout: float = 30) -> None:
    """Block until every CRD is Established and its kinds are in discovery (which lags behind
    Established, most under load), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    for crd in crds:
        spec = crd["spec"]
        kinds = [(f"{spec['group']}/{v['name']}", spec["names"]["kind"]) for v in spec["versions"] if v.get("served")]
        while True:
            try:
                if is_true(kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]),
                           "Established"):
                    for api_version, kind in kinds:
                        kube.resource(api_version, kind)
                    break
            except ApiError as error:
                if error.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd['metadata']['name']} not Established and discoverable after {timeout:.0f} s")
            time.sleep(0.1)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy and return that; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def served(kube: Kube, manifest: Manifest) -> bool:
    try:
        kube.resource(manifest["apiVersion"], manifest["kind"])
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    return True


def apply_all(kube: Kube, manifests: list[Manifest]) -> list[Manifest]:
    """Apply in the rendered (dependency) order, CRDs Established before their objects.

    Returns the objects left out because this control plane does not serve their kind:
    kinds whose CRD an operator creates at run time (virt-operator installs VirtualMachine
    and VirtualMachinePool), which needs a node to run the operator.
    """
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    crd_groups = {crd["spec"]["group"] for crd in crds}
    waited, left_out = False, []
    for manifest in manifests:
        if not waited and manifest["apiVersion"].split("/")[0] in crd_groups:
            wait_established(kube, crds)
            waited = True
        if manifest["kind"] != "CustomResourceDefinition" and not served(kube, manifest):
            left_out.append(manifest)
            continue
        kube.apply(manifest)
    return left_out
