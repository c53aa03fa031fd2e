"""`doctor` against a live API server: the kube context each stack names, its server version,
and a RuntimeClass a template names, missing and then present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def doctor(plane: ControlPlane, stack: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = subprocess.run([sys.executable, "-m", "sandbox_infra", "doctor", "-s", stack, "-o", "json"], cwd=ROOT,
                            env=plane.env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_doctor_reaches_the_stack_s_context_and_finds_its_runtime_class(plane: ControlPlane) -> None:
    _, checks = doctor(plane, "staging")
    context = checks["kube context"]
    # staging names its cluster's context, which the e2e kubeconfig maps to this control plane.
    assert context["status"] == "ok", context
    assert context["detail"].startswith(f"staging-eu-west at {plane.server}: server v1.")
    assert checks["RuntimeClasses"]["status"] == "fail" and checks["RuntimeClasses"]["detail"] == "missing: gvisor"
    plane.client().apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
                          "handler": "runsc"})
    _, checks = doctor(plane, "staging")
    assert checks["RuntimeClasses"]["status"] == "ok"
