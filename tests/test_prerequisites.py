"""The bring-your-own preflight (components/prerequisites.py) offline: when it cannot ask a cluster
it says nothing and leaves the answer to the engine's CRD reads; when it can, one sentence names
every missing CRD. (tests/e2e/test_prerequisites.py runs it against a live, empty API server.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from components import prerequisites
from components.errors import ConfigError
from components.prerequisites import agent_sandbox_crd_names, ensure_registered, missing_crds
from components.specs.cluster import KubernetesProvider


def test_render_only_stacks_never_ask_a_cluster() -> None:
    assert missing_crds(KubernetesProvider(render_yaml_to_directory="out"), agent_sandbox_crd_names()) is None


def test_an_unreachable_cluster_leaves_the_answer_to_the_engine(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    assert missing_crds(KubernetesProvider(kubeconfig=str(kubeconfig)), agent_sandbox_crd_names()) is None
    assert missing_crds(KubernetesProvider(kubeconfig=str(tmp_path / "absent")), agent_sandbox_crd_names()) is None


def test_one_sentence_names_every_missing_crd(monkeypatch: pytest.MonkeyPatch) -> None:
    names = agent_sandbox_crd_names()
    monkeypatch.setattr(prerequisites, "missing_crds", lambda settings, crds: list(crds[:2]))
    with pytest.raises(ConfigError) as error:
        ensure_registered(KubernetesProvider(), names, "agent-sandbox", "sandbox-infra:agentSandbox.install")
    message = str(error.value)
    assert "\n" not in message and all(name in message for name in names[:2]) and names[2] not in message
    assert message.startswith("sandbox-infra:agentSandbox.install is 'external', but the cluster does not serve")
    monkeypatch.setattr(prerequisites, "missing_crds", lambda settings, crds: [])
    ensure_registered(KubernetesProvider(), names, "agent-sandbox", "sandbox-infra:agentSandbox.install")
