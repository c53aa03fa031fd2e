"""The one place where upstream objects installed verbatim are excepted from a rule.

Every entry names the rule, the exact object and (where the rule reports parts of an
object) the exact parts it covers, and says why. Nothing is skipped wholesale: an
excepted finding is still computed and shown (as a suppressed result in SARIF, as
"excepted" in the other reports); it only does not fail the check. When upstream
changes the object, anything the exception does not name surfaces again.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rule import Manifest, Violation
from .workloads import dig


@dataclass(frozen=True)
class PolicyException:
    rule: str
    kind: str
    name: str
    justification: str
    source: str
    namespace: str = ""
    subjects: frozenset[str] | None = None
    """The parts of the object the exception covers (a rule's violation subjects); None: all."""

    def covers(self, rule: str, manifest: Manifest, violation: Violation) -> bool:
        return (
            rule == self.rule
            and manifest.get("kind") == self.kind
            and dig(manifest, "metadata", "name") == self.name
            and (dig(manifest, "metadata", "namespace") or "") == self.namespace
            and (self.subjects is None or violation.subject in self.subjects)
        )


UPSTREAM_EXCEPTIONS: tuple[PolicyException, ...] = (
    PolicyException(
        rule="namespace-pss-restricted", kind="Namespace", name="kubevirt",
        justification=(
            "KubeVirt's operator namespace must allow privileged pods: virt-handler runs privileged on every node "
            "to manage VM processes and devices, so upstream labels the namespace "
            "pod-security.kubernetes.io/enforce: privileged. It holds only KubeVirt's own components, never "
            "sandboxes; tenant namespaces stay restricted."
        ),
        source="kubevirt v1.9.0 kubevirt-operator.yaml (Namespace kubevirt)",
    ),
    PolicyException(
        rule="rbac-no-wildcards", kind="ClusterRole", name="kubevirt-operator",
        subjects=frozenset({"apiGroups=kubevirt.io", "apiGroups=cdi.kubevirt.io"}),
        justification=(
            "virt-operator owns every KubeVirt and CDI API: it creates those CRDs at run time and the set of "
            "resources changes between releases, so upstream grants '*' within exactly these two API groups. "
            "Any wildcard in another group is still a violation."
        ),
        source="kubevirt v1.9.0 kubevirt-operator.yaml (ClusterRole kubevirt-operator)",
    ),
    PolicyException(
        rule="rbac-claimers-cannot-write-workloads", kind="ClusterRole", name="agent-sandbox-controller-extensions",
        justification=(
            "This is the agent-sandbox controller's own role, not a claimer's: the controller reconciles "
            "SandboxClaims and SandboxWarmPools into Sandboxes and pods, so it must both manage claims and write "
            "workloads. Upstream binds it only to the controller's service account in agent-sandbox-system."
        ),
        source="agent-sandbox extensions-rbac.generated.yaml (ClusterRole agent-sandbox-controller-extensions)",
    ),
)


def exception_for(rule: str, manifest: Manifest, violation: Violation) -> PolicyException | None:
    return next((e for e in UPSTREAM_EXCEPTIONS if e.covers(rule, manifest, violation)), None)
