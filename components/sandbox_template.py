"""SandboxTemplate component."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
from dataclasses import dataclass
from typing import Any

import pulumi

from .agent_sandbox import AgentSandbox
from .k8s import as_spec, checked_input, dependencies, metadata, one_of, place
from .manifests.common import Manifest
from .manifests.sandbox_template import build_cilium_network_policy, build_sandbox_template
from .specs.base import Image, Spec
from .specs.loader import validated
from .specs.template import TemplateSpec
from .tenant import Tenant

# Fills a mapping spec that leaves `image` out for the `image` field; never reaches the cluster.
IMAGE_FROM_INPUT = "image.invalid/from-the-image-field:0"


class _ImageField(Spec):
    """The `image` field, checked by the rule `spec.image` is checked by."""

    image: Image


@dataclass
class SandboxTemplateArgs:
    spec: TemplateSpec | dict[str, Any]
    """The template (`templates[]` in docs/config.md), as a `TemplateSpec` or a mapping of its
    keys: image, resources, network allowlist, runtime class, trust (`tenant` may be left out:
    it is the tenant passed). The pod it renders is hardened whatever the spec says: non-root,
    read-only root filesystem, all capabilities dropped, RuntimeDefault seccomp, no
    service-account token, and a managed default-deny NetworkPolicy unless `network` opens it."""
    install: AgentSandbox
    """The agent-sandbox install: the template is written in the API version its release
    serves, and waits for its CRDs and controller."""
    tenant: Tenant
    """The tenant whose namespace the template lives in; it waits for the tenant."""
    image: str | pulumi.Output[str] | None = None
    """The container image, where another resource gives it (an image build, a registry
    lookup): overrides `spec.image`, which may then be left out. Checked as `spec.image` is
    (pinned by a version tag or an @sha256 digest, never `:latest`): a known value at once, an
    Output once it resolves (unknown in a preview, it is checked by `up`), with one message."""


class SandboxTemplate(pulumi.ComponentResource):
    """A SandboxTemplate in the tenant's namespace, and, for a template whose egress Cilium
    enforces (`network.externalEnforcer: cilium`), its CiliumNetworkPolicy (created first: no
    sandbox of the template starts before its egress is enforced). Pass it to its warm pools."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    api_version: pulumi.Output[str]
    """Group/version of the template, for references from pools and claims."""

    def __init__(self, name: str, args: SandboxTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:SandboxTemplate", name, None, opts)
        where = f"SandboxTemplate {name!r}"
        tenant = args.tenant._spec.name
        image = None if args.image is None else checked_input(
            args.image, lambda value: validated(_ImageField, {"image": value}, where, prefix="").image)
        filled = {"image": IMAGE_FROM_INPUT} if image is not None else {}  # only where the mapping has no image
        spec = as_spec(TemplateSpec, args.spec, where, tenant=tenant, **filled)
        if isinstance(image, str):
            spec = spec.model_copy(update={"image": image})
        self._spec = spec
        one_of(spec.tenant, tenant, where, "tenant")
        self._install = args.install._spec
        self._needs = [args.install, args.tenant]  # what its pools wait for too
        manifest = build_sandbox_template(spec, self._install.api_version)
        if isinstance(image, pulumi.Output):
            manifest = _with_image(manifest, image)
        policy = build_cilium_network_policy(spec)
        created = place(self, [manifest, *([policy] if policy else [])], [*dependencies(opts), *self._needs])
        self.name = metadata(created[0])
        self.namespace = metadata(created[0], "namespace")
        self.api_version = created[0].metadata.apply(lambda _: manifest["apiVersion"])  # type: ignore[attr-defined]
        self.register_outputs({"name": self.name, "namespace": self.namespace, "apiVersion": self.api_version})


def _with_image(manifest: Manifest, image: pulumi.Output[str]) -> Manifest:
    """The built template with its container's image an Output (the SDK serializes an Output
    nested in the spec; the builder stays a pure function of the spec)."""
    pod = manifest["spec"]["podTemplate"]
    (container,) = pod["spec"]["containers"]
    pod = {**pod, "spec": {**pod["spec"], "containers": [{**container, "image": image}]}}
    return {**manifest, "spec": {**manifest["spec"], "podTemplate": pod}}
