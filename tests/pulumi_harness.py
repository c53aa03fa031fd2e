"""Run the real Pulumi program code under `pulumi.runtime.set_mocks` and record
what the engine would receive: every resource registration with its type, name,
parent, dependencies, options and inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    dependencies: list[str]
    retain_on_delete: bool
    alias_types: list[str]
    custom: bool
    provider: str
    inputs: dict[str, Any] = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    read_id: str | None = None
    """Set for lookups of existing resources (`Resource.get`): the ID that was read."""
    alias_urns: list[str] = field(default_factory=list)
    """The URNs the resource answers to through its aliases (type, name or parent changed),
    as the engine computes them."""

    @property
    def manifest_kind(self) -> str:
        return self.inputs.get("kind", "")


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        outputs = dict(args.inputs)
        if args.typ.startswith("kubernetes:") and args.typ != "pulumi:providers:kubernetes":
            outputs.setdefault("status", {})
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


class ClusterWithCrds(pulumi.runtime.Mocks):
    """A cluster that has exactly the given CRDs registered: lookups of others fail the
    way the engine fails a `get` of a missing object."""

    def __init__(self, crds: set[str]) -> None:
        self.crds = crds

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.resource_id and args.typ == CRD:
            if args.resource_id not in self.crds:
                raise Exception(f"resource '{args.resource_id}' does not exist")
            return args.resource_id, {"metadata": {"name": args.resource_id}, "status": {}}
        return f"{args.name}-id", {**args.inputs, "status": {}}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, resource_mocks: pulumi.runtime.Mocks | None = None, record_inputs: bool = True) -> None:
        super().__init__(resource_mocks or _Mocks())
        self.registrations: list[Registration] = []
        self.record_inputs = record_inputs

    def _record(self, request: Any, urn: str, **fields: Any) -> None:
        self.registrations.append(Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            dependencies=sorted(request.dependencies),
            provider=request.provider,
            additional_secret_outputs=sorted(request.additionalSecretOutputs),
            **fields,
        ))

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self._record(request, response.urn, retain_on_delete=False, alias_types=[], custom=True, read_id=request.id)
        return response

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(
                request, response.urn,
                retain_on_delete=bool(request.retainOnDelete),
                alias_types=sorted(a.spec.type for a in request.aliases if a.spec.type),
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(request.object) if self.record_inputs else {},
                protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
                alias_urns=[_alias_urn(response.urn, request.parent, a.spec) for a in request.aliases if a.spec],
            )
        return response


def _alias_urn(urn: str, parent: str, spec: Any) -> str:
    """The URN an alias spec names: urn:pulumi:STACK::PROJECT::PARENT_TYPE$TYPE::NAME, where
    PARENT_TYPE is the last type of the parent's URN (none without a parent)."""
    head, project, qualified, name = urn.split("::", 3)
    alias_parent = "" if spec.noParent else (spec.parentUrn or parent)
    parent_type = alias_parent.split("::")[2].rpartition("$")[2] if alias_parent else ""
    own_type = spec.type or qualified.rpartition("$")[2]
    return f"{head}::{project}::{parent_type + '$' if parent_type else ''}{own_type}::{spec.name or name}"


def run_under_mocks(
    program: Callable[[], Any], stack: str = "test", resource_mocks: pulumi.runtime.Mocks | None = None,
    monitor: RecordingMonitor | None = None, project: str = "sandbox-infra", resolved: dict[str, Any] | None = None,
    preview: bool = False,
) -> list[Registration]:
    """Run `program` as the Pulumi program of a mocked stack; return the registrations.
    `resource_mocks` replaces the default mocks (e.g. to model a cluster's existing CRDs);
    `monitor` the recording monitor (e.g. a subclass that keeps more of each request, or
    one with `record_inputs` off: benchmarks skip decoding the inputs). A program that
    returns a mapping of Outputs has their values put into `resolved`. `preview`: run as a
    preview, where unknown values reach the engine as unknowns."""
    monitor = monitor or RecordingMonitor(resource_mocks)
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=preview, monitor=monitor)

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        outputs = program()
        if isinstance(outputs, dict) and resolved is not None:
            return pulumi.Output.all(**outputs).apply(resolved.update)
        return pulumi.Output.from_input(None)

    run()
    return monitor.registrations
