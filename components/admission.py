"""AdmissionPolicies component: the stack's rules as ValidatingAdmissionPolicies, enforced by
the kube-apiserver on everything that reaches the tenant namespaces (sandbox_policy.admission)."""

# No `from __future__ import annotations` in the component modules (see components/__init__.py).
import typing
from dataclasses import dataclass, field
from typing import Any

import pulumi
from sandbox_policy.settings import PolicySpec
from sandbox_policy.vocabulary import Environment

from .errors import ConfigError
from .k8s import as_spec, dependencies, place
from .kubevirt import KubeVirt
from .manifests.admission import build_admission
from .tenant import Tenant


@dataclass
class AdmissionPoliciesArgs:
    spec: PolicySpec | dict[str, Any]
    """The rules' settings (`policy` in docs/config.md: `admission: audit` binds them with
    `[Audit, Warn]`, `enforce` with `[Deny]`; caps, allowlists, runtime classes), as a
    `PolicySpec` or a mapping of those keys."""
    cluster: str
    """The cluster's name (`cluster.name`): the policies are named `sandbox-infra-<cluster>-<rule>`."""
    environment: str
    """The cluster's environment (`dev`, `staging` or `prod`): some rules judge by it."""
    tenants: list[Tenant] = field(default_factory=list)
    """The tenants whose namespaces the rules bind to; the bindings wait for them."""
    kubevirt: KubeVirt | None = None
    """The KubeVirt install: its KubeVirt CR is judged in the operator's namespace. None when
    the program does not install KubeVirt."""


class AdmissionPolicies(pulumi.ComponentResource):
    """A ValidatingAdmissionPolicy and its binding for every rule the API server can judge from
    one object (docs/admission.md lists the rest and why). The bindings are created after the
    policies: a binding naming a policy that does not exist yet is accepted but judges nothing."""

    policies: pulumi.Output[list[str]]
    """The names of the ValidatingAdmissionPolicies."""

    def __init__(self, name: str, args: AdmissionPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sandbox-infra:index:AdmissionPolicies", name, None, opts)
        where = f"AdmissionPolicies {name!r}"
        policy = as_spec(PolicySpec, args.spec, where)
        allowed = typing.get_args(Environment)
        if args.environment not in allowed:
            raise ConfigError(f"{where}: environment = {args.environment!r}: allowed: {', '.join(map(repr, allowed))}")
        manifests = build_admission(policy, args.environment, args.cluster,  # type: ignore[arg-type]
                                    [t._spec.name for t in args.tenants],
                                    args.kubevirt._namespace if args.kubevirt is not None else None)
        place(self, manifests, dependencies(opts))
        self.policies = pulumi.Output.from_input(
            sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"))
        self.register_outputs({"mode": policy.admission, "policies": self.policies})
