"""`doctor` against a live API server: the kube context each stack names, its server version,
a RuntimeClass a template names, missing and then present; and a kubeconfig whose user
authenticates through an exec plugin, as EKS, GKE and AKS kubeconfigs do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from .controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def doctor(plane: ControlPlane, stack: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, dict[str, str]]]:
    result = subprocess.run([sys.executable, "-m", "sandbox_infra", "doctor", "-s", stack, "-o", "json"], cwd=ROOT,
                            env=env or plane.env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
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


# An exec credential plugin as EKS, GKE and AKS kubeconfigs run (`aws eks get-token`,
# `gke-gcloud-auth-plugin`, `kubelogin`): prints an ExecCredential with a bearer token.
# Here the token is a real ServiceAccount token of this API server, read from a file.
EXEC_PLUGIN = """#!/usr/bin/env python3
import json, os, sys
if os.environ.get("PLUGIN_FAIL"):
    sys.exit("plugin: not logged in")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {"token": open(sys.argv[1]).read().strip()}}))
"""


def _service_account_token(plane: ControlPlane) -> str:
    """A token for a ServiceAccount that may read what doctor reads, and nothing else."""
    kube = plane.client()
    for manifest in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doctor-e2e"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "doctor", "namespace": "doctor-e2e"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "doctor-e2e"},
         "rules": [{"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get"]},
                   {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["get"]},
                   {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "doctor-e2e"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "doctor-e2e"},
         "subjects": [{"kind": "ServiceAccount", "name": "doctor", "namespace": "doctor-e2e"}]},
    ):
        kube.apply(manifest)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    granted = kube.request("POST", "/api/v1/namespaces/doctor-e2e/serviceaccounts/doctor/token", body=request)
    return granted["status"]["token"]


def test_doctor_authenticates_through_an_exec_plugin(plane: ControlPlane, tmp_path: Path) -> None:
    token_file, plugin = tmp_path / "token", tmp_path / "get-token"
    token_file.write_text(_service_account_token(plane))
    plugin.write_text(EXEC_PLUGIN)
    plugin.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "staging-eu-west",
        "clusters": [{"name": "e2e", "cluster": {"server": plane.server,
                                                 "certificate-authority": str(plane.pki / "ca.crt")}}],
        "users": [{"name": "plugin", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "args": [str(token_file)],
            "interactiveMode": "Never"}}}],
        "contexts": [{"name": "staging-eu-west", "context": {"cluster": "e2e", "user": "plugin"}}],
    }))
    env = {**plane.env(), "KUBECONFIG": str(kubeconfig)}

    _, checks = doctor(plane, "staging", env)
    context = checks["kube context"]
    assert context["status"] == "ok", context
    assert context["detail"].startswith(f"staging-eu-west at {plane.server}: server v1.")
    # /version answers anyone; a RuntimeClass only the plugin's ServiceAccount (anonymous: HTTP 403).
    assert checks["RuntimeClasses"]["detail"] in ("missing: gvisor", "present: gvisor"), checks["RuntimeClasses"]

    # A token the API server does not know: the server's answer, not a pass.
    token_file.write_text("not-a-valid-token")
    _, checks = doctor(plane, "staging", env)
    assert checks["kube context"]["status"] == "fail"
    assert "HTTP 401" in checks["kube context"]["detail"], checks["kube context"]

    # The plugin itself fails (not logged in): said, without a traceback.
    _, checks = doctor(plane, "staging", {**env, "PLUGIN_FAIL": "1"})
    assert checks["kube context"]["status"] == "fail"
    assert "credentials plugin failed" in checks["kube context"]["detail"], checks["kube context"]
