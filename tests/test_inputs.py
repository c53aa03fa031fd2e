"""The input front door (components/inputs.py) on the YAML it must still accept, and the
kubeconfig path through to the Pulumi provider."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from components.errors import ConfigError
from components.inputs import MAX_ALIAS_NODES, MAX_BYTES, InputError, decode, load_documents, load_yaml, read_text
from components.specs.loader import spec_from_config
from components.stack import provider
from components.upstream import upstream_dir

from .pulumi_harness import run_under_mocks


def test_anchors_aliases_and_merge_keys_still_load() -> None:
    text = "base: &base {cpu: 1, memory: 1Gi}\nsmall:\n  <<: *base\n  cpu: 2\nlist: [*base, *base]\n"
    assert load_yaml(text, "f") == {"base": {"cpu": 1, "memory": "1Gi"}, "small": {"cpu": 2, "memory": "1Gi"},
                                    "list": [{"cpu": 1, "memory": "1Gi"}] * 2}


def test_the_alias_budget_counts_expansion_not_size() -> None:
    # A large document without aliases is fine; a small one whose aliases expand past the budget is not.
    big = "items: [" + ", ".join(str(i) for i in range(MAX_ALIAS_NODES + 1000)) + "]\n"
    assert len(load_yaml(big, "big")["items"]) == MAX_ALIAS_NODES + 1000
    bomb = "a: &a [" + ", ".join(["x"] * 1000) + "]\nb: &b [" + ", ".join(["*a"] * 200) + "]\n"
    with pytest.raises(InputError, match=r"b expands its aliases to more than 100,000 nodes"):
        load_yaml(bomb, "bomb")


def test_a_utf8_byte_order_mark_is_accepted_other_encodings_are_named() -> None:
    assert decode(codecs.BOM_UTF8 + b"a: 1\n", "f") == "a: 1\n"
    with pytest.raises(InputError, match="is UTF-32 encoded"):
        decode(codecs.BOM_UTF32_LE + "a: 1".encode("utf-32-le"), "f")
    with pytest.raises(InputError, match=r"line 2, column 4: is not UTF-8 text \(byte 0xff\)"):
        decode(b"a: 1\nb: \xff\n", "f")


def test_files_larger_than_the_limit_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(InputError, match=r"big.yaml: larger than 16 MiB; refusing to read it"):
        read_text(big)


def test_a_syntax_error_never_quotes_the_line() -> None:
    with pytest.raises(InputError) as caught:
        load_yaml("cloudInit: |\n  password: hunter2\nkey: 'unterminated hunter2\n", "f")
    assert "hunter2" not in str(caught.value) and "line 4" in str(caught.value)


def test_upstream_manifests_load_as_libyaml_loads_them() -> None:
    path = upstream_dir() / "agent-sandbox" / "v0.5.6" / "k8s" / "crds" / "extensions.agents.x-k8s.io_sandboxwarmpools.yaml"
    if not path.is_file():
        pytest.skip(f"no upstream mirror at {path.parent}")
    text = path.read_text()
    expected = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    assert [d.data for d in load_documents(text, "crd")] == expected
    assert [d.data for d in load_documents(text, "crd", digest_verified=True)] == expected


def _provider_inputs(config: dict[str, Any], secret_keys: set[str] | None) -> dict[str, Any]:
    spec = spec_from_config(config, secret_keys=secret_keys)
    registrations = run_under_mocks(lambda: provider(spec))
    return next(r for r in registrations if r.type == "pulumi:providers:kubernetes").inputs


def test_a_kubeconfig_path_reaches_the_provider_expanded(minimal_config: dict[str, Any]) -> None:
    minimal_config["cluster"]["provider"] = {"kubeconfig": "~/.kube/prod"}
    inputs = _provider_inputs(minimal_config, secret_keys=None)
    assert inputs["kubeconfig"] == str(Path.home() / ".kube" / "prod")


def test_kubeconfig_contents_reach_the_provider_only_as_a_secret(minimal_config: dict[str, Any]) -> None:
    contents = "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: t0k3n}}]\n"
    minimal_config["cluster"]["provider"] = {"kubeconfig": contents}
    with pytest.raises(ConfigError, match="kubeconfig: must be a Pulumi secret") as caught:
        spec_from_config(minimal_config)  # offline, in a file: refused
    assert "t0k3n" not in str(caught.value)
    with pytest.raises(ConfigError, match="kubeconfig: must be a Pulumi secret"):
        _provider_inputs(minimal_config, secret_keys=set())  # under the engine, but not marked secret
    # `pulumi config set --secret --path cluster.provider.kubeconfig`: the engine marks `cluster` secret.
    inputs = _provider_inputs(minimal_config, secret_keys={"cluster"})
    assert rpc.is_rpc_secret(inputs["kubeconfig"]) and rpc.unwrap_rpc_secret(inputs["kubeconfig"]) == contents
