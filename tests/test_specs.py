"""Typed stack config: good config loads, bad config fails with one clear message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.errors import ConfigError
from components.specs import load_stack, spec_from_config
from components.specs.loader import shown_value
from components.specs.network import normalise_domain

from .conftest import SHIPPED_STACKS


def _with(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of config with the dotted path (list indexes as numbers) set to value."""
    result = copy.deepcopy(config)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = result
    for part in parents:
        node = node[part]
    node[last] = value
    return result


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        spec_from_config(config, source="Pulumi.test.yaml")
    return str(caught.value)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_load(stack: str) -> None:
    spec = load_stack(stack)
    assert stack.split("-")[0] == spec.cluster.environment
    assert spec.templates and spec.warm_pools


def test_defaults_are_secure(minimal_config: dict[str, Any]) -> None:
    spec = spec_from_config(minimal_config)
    template = spec.templates[0]
    assert spec.agent_sandbox.version == "v0.5.6"
    assert template.read_only_root_filesystem is True
    assert template.env_vars_injection_policy == "Disallowed"
    assert template.network.management == "Managed"
    assert template.run_as_user > 0
    assert spec.warm_pools[0].allow_gpu is False


# (config path, bad value, fragments the message must contain: key path, value, what is allowed)
BAD_VALUES = [
    ("cluster.name", "Prod_1", ["sandbox-infra:cluster.name", "'Prod_1'", "DNS-1123 label"]),
    ("cluster.environment", "qa", ["sandbox-infra:cluster.environment", "'qa'", "'dev', 'staging' or 'prod'"]),
    ("agentSandbox", {"version": "v0.3.0"}, ["sandbox-infra:agentSandbox.version", "'v0.3.0'", "'v0.4.6' or 'v0.5.6'"]),
    ("agentSandbox", {"controller": {"replicas": 9}}, ["agentSandbox.controller.replicas", "9", "less than or equal to 5"]),
    ("templates.0.image", "python", ["sandbox-infra:templates[0].image", "'python'", "pinned"]),
    ("templates.0.image", "ghcr.io/x/python:latest", ["templates[0].image", ":latest"]),
    ("templates.0.port", 70000, ["templates[0].port", "70000", "less than or equal to 65535"]),
    ("templates.0.resources", {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     ["templates[0].resources", "requests.cpu (2) is greater than limits.cpu (1)"]),
    ("templates.0.resources", {"requests": {"cpu": "1"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     ["templates[0].resources", "requests must set memory"]),
    ("templates.0.resources", {"requests": {"cpu": "lots", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     ["templates[0].resources.requests.cpu", "'lots'", "Kubernetes quantity"]),
    ("templates.0.labels", {"agents.x-k8s.io/claim": "x"}, ["templates[0].labels", "reserved prefix 'agents.x-k8s.io'"]),
    ("templates.0.annotations", {"sandbox.extensions.agents.x-k8s.io/pool": "x"},
     ["templates[0].annotations", "reserved prefix"]),
    ("templates.0.envVarsInjectionPolicy", "Sometimes", ["envVarsInjectionPolicy", "'Sometimes'", "'Disallowed'"]),
    ("templates.0.network", {"egress": {"cidrs": ["169.254.169.254/32"]}},
     ["templates[0].network.egress.cidrs[0]", "'169.254.169.254/32'", "metadata"]),
    ("templates.0.network", {"egress": {"cidrs": ["fd00:ec2::254/128"]}}, ["egress.cidrs[0]", "metadata"]),
    # IPv4-mapped IPv6 spellings of the metadata range are the IPv4 range they name.
    ("templates.0.network", {"egress": {"cidrs": ["::ffff:169.254.169.254/128"]}},
     ["egress.cidrs[0]", "'::ffff:169.254.169.254/128'", "inside the link-local / cloud metadata range 169.254.0.0/16",
      "IPv4-mapped spelling of 169.254.169.254/32"]),
    ("templates.0.network", {"egress": {"cidrs": ["::ffff:a9fe:a9fe/128"]}},
     ["egress.cidrs[0]", "'::ffff:a9fe:a9fe/128'", "IPv4-mapped spelling of 169.254.169.254/32"]),
    ("templates.0.network", {"egress": {"cidrs": ["0:0:0:0:0:FFFF:A9FE:A9FE/128"]}},
     ["egress.cidrs[0]", "IPv4-mapped spelling of 169.254.169.254/32"]),
    ("templates.0.network", {"egress": {"cidrs": ["::ffff:a9fe:0/112"]}},
     ["egress.cidrs[0]", "IPv4-mapped spelling of 169.254.0.0/16"]),
    ("templates.0.network", {"egress": {"cidrs": ["::ffff:169.0.0.0/104"]}},
     ["egress.cidrs[0]", "IPv4-mapped spelling of 169.0.0.0/8, which contains", "write it as 169.0.0.0/8"]),
    ("templates.0.network", {"egress": {"cidrs": ["::ffff:0:0/96"]}},
     ["egress.cidrs[0]", "IPv4-mapped spelling of 0.0.0.0/0", "write it as 0.0.0.0/0"]),
    ("templates.0.network", {"egress": {"cidrs": ["10.0.0.300/8"]}}, ["egress.cidrs[0]", "must be a CIDR"]),
    ("templates.0.network", {"egress": {"domains": ["https://pypi.org"]}},
     ["templates[0].network", "cannot be enforced by a NetworkPolicy", "Unmanaged"]),
    ("templates.0.network", {"management": "Unmanaged"}, ["templates[0].network", "externalEnforcer"]),
    ("templates.0.network", {"egress": {"domains": ["not a host!"]}}, ["egress.domains[0]", "'not a host!'", "host name"]),
    ("templates.0.env", [{"name": "TOKEN"}], ["templates[0].env[0]", "exactly one of value or secretKeyRef"]),
    ("warmPools.0.replicas", -1, ["sandbox-infra:warmPools[0].replicas", "-1", "greater than or equal to 0"]),
    ("warmPools.0.updateStrategy", "Rolling", ["warmPools[0].updateStrategy", "'Rolling'", "'OnReplenish' or 'Recreate'"]),
    ("warmPools.0.template", "pyhton", ["sandbox-infra:warmPools[0].template", "'pyhton'", "allowed: 'python'"]),
    ("templates.0.tenant", "team-b", ["sandbox-infra:templates[0].tenant", "'team-b'", "allowed: 'team-a'"]),
    ("warmPools.0.replicas", 500, ["warmPools[0].replicas", "500", "maxWarmPoolReplicas=20"]),
]


@pytest.mark.parametrize(("path", "value", "fragments"), BAD_VALUES, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD_VALUES])
def test_bad_value_is_named(minimal_config: dict[str, Any], path: str, value: Any, fragments: list[str]) -> None:
    message = _error(_with(minimal_config, path, value))
    assert message.startswith("Pulumi.test.yaml: invalid config")
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in message


def test_unknown_key_lists_allowed_keys(minimal_config: dict[str, Any]) -> None:
    message = _error(_with(minimal_config, "templates.0.imagePullPolicy", "Always"))
    assert "sandbox-infra:templates[0].imagePullPolicy: unknown key" in message
    assert "allowed keys here: name, tenant, image" in message


def test_unknown_top_level_key(minimal_config: dict[str, Any]) -> None:
    message = _error({**minimal_config, "warmpools": []})
    assert "sandbox-infra:warmpools: unknown key" in message and "warmPools" in message


def test_missing_required_key(minimal_config: dict[str, Any]) -> None:
    config = copy.deepcopy(minimal_config)
    del config["templates"][0]["resources"]
    assert "sandbox-infra:templates[0].resources: required key is missing" in _error(config)


def test_every_problem_reported_at_once(minimal_config: dict[str, Any]) -> None:
    config = _with(_with(minimal_config, "cluster.environment", "qa"), "templates.0.port", 0)
    message = _error(config)
    assert "(2 problems)" in message
    assert "cluster.environment" in message and "templates[0].port" in message


def test_duplicate_names(minimal_config: dict[str, Any]) -> None:
    config = copy.deepcopy(minimal_config)
    config["warmPools"].append(dict(config["warmPools"][0]))
    assert "sandbox-infra:warmPools[1].name = 'python': is already used" in _error(config)


def test_gpu_pool_needs_opt_in(minimal_config: dict[str, Any]) -> None:
    gpu = {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1},
           "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}
    config = _with(minimal_config, "templates.0.resources", gpu)
    assert "warmPools[0].allowGpu = False: must be true" in _error(config)
    assert spec_from_config(_with(config, "warmPools.0.allowGpu", True)).warm_pools[0].allow_gpu


def test_runtime_class_required_where_stack_says_so(minimal_config: dict[str, Any]) -> None:
    config = _with(minimal_config, "policy", {"requireRuntimeClass": True})
    assert "templates[0].runtimeClassName: is required for untrusted templates" in _error(config)
    spec_from_config(_with(config, "templates.0.runtimeClassName", "gvisor"))
    trusted = _with(config, "templates.0.trust", "trusted")
    spec_from_config(_with(trusted, "policy", {"requireRuntimeClass": True, "admission": "audit"}))


def test_trusted_templates_under_enforcement_need_what_admission_demands(minimal_config: dict[str, Any]) -> None:
    """Admission judges the controller's Sandboxes as untrusted: a trusted template whose Sandboxes
    it would refuse is a config error naming the key and the fix, not a refusal at the first claim."""
    trusted = _with(_with(minimal_config, "policy", {"requireRuntimeClass": True}), "templates.0.trust", "trusted")
    message = _error(trusted)
    assert "sandbox-infra:templates[0].runtimeClassName: is required for trusted templates too" in message
    assert "policy.admission is 'enforce'" in message and "would refuse every one" in message
    assert "set runtimeClassName to one of policy.sandboxRuntimeClasses ('gvisor'" in message
    runc = _error(_with(_with(minimal_config, "templates.0.trust", "trusted"), "templates.0.runtimeClassName", "runc"))
    assert "templates[0].runtimeClassName = 'runc': is not a sandboxing runtime class, and policy.admission" in runc
    # What admission admits: a sandboxing class; no class where none is required; admission not enforcing.
    spec_from_config(_with(trusted, "templates.0.runtimeClassName", "gvisor"))
    spec_from_config(_with(trusted, "policy", {"requireRuntimeClass": False}))
    for mode in ("audit", "off"):
        spec_from_config(_with(trusted, "policy", {"requireRuntimeClass": True, "admission": mode}))


def test_untrusted_templates_name_only_sandboxing_runtime_classes(minimal_config: dict[str, Any]) -> None:
    config = _with(minimal_config, "templates.0.runtimeClassName", "runc")
    assert "templates[0].runtimeClassName = 'runc': is not a sandboxing runtime class" in _error(config)
    trusted = _with(config, "templates.0.trust", "trusted")  # vetted code may run under runc ...
    spec_from_config(_with(trusted, "policy", {"admission": "off"}))  # ... where admission does not judge it
    spec_from_config(_with(config, "policy", {"sandboxRuntimeClasses": ["runc"]}))  # the stack's own choice
    spec_from_config(_with(config, "templates.0.runtimeClassName", "kata-qemu"))  # a default


def test_cilium_learns_allowed_names_from_dns(minimal_config: dict[str, Any]) -> None:
    network = {"management": "Unmanaged", "externalEnforcer": "cilium", "allowDns": False,
               "egress": {"domains": ["pypi.org"]}}
    assert "need allowDns: true" in _error(_with(minimal_config, "templates.0.network", network))
    spec_from_config(_with(minimal_config, "templates.0.network", {**network, "allowDns": True}))


def test_render_only_needs_no_waiting(minimal_config: dict[str, Any]) -> None:
    config = _with(minimal_config, "cluster.provider", {"renderYamlToDirectory": "out"})
    assert "waitForWorkloads: false" in _error(config)
    spec_from_config(_with(config, "cluster.waitForWorkloads", False))


@pytest.mark.parametrize(("given", "host"), [
    ("https://API.example.com:8443/v1?x=1", "api.example.com"),
    ("files.pythonhosted.org:443", "files.pythonhosted.org"),
    ("pypi.org.", "pypi.org"),
    ("*.githubusercontent.com", "*.githubusercontent.com"),
])
def test_domains_normalised_to_host_names(given: str, host: str) -> None:
    assert normalise_domain(given) == host


def test_mirror_registry_keeps_image_path(minimal_config: dict[str, Any]) -> None:
    config = _with(minimal_config, "agentSandbox", {"version": "v0.4.6", "controller": {"registryMirror": "mirror.corp"}})
    assert spec_from_config(config).agent_sandbox.controller_image() == (
        "mirror.corp/agent-sandbox/agent-sandbox-controller:v0.4.6"
    )


# --- the provider's local paths, as the engine run checks them (components/specs/paths.py) ----

def _under_engine(config: dict[str, Any], project: Path) -> str | None:
    """The config error of loading `config` as __main__ does (paths checked in `project`), or None."""
    try:
        spec_from_config(config, source="Pulumi.test.yaml", secret_keys=(), project=project)
    except ConfigError as error:
        return str(error)
    return None


def _provider(config: dict[str, Any], **provider: Any) -> dict[str, Any]:
    config = _with(config, "cluster.provider", provider)
    if "renderYamlToDirectory" in provider:
        config = _with(config, "cluster.waitForWorkloads", False)
    return config


def test_a_kubeconfig_path_must_name_a_readable_file(minimal_config: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    kubeconfig = tmp_path / "cluster.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert _under_engine(_provider(minimal_config, kubeconfig="cluster.yaml"), tmp_path) is None  # relative to the project
    assert _under_engine(_provider(minimal_config, kubeconfig=str(kubeconfig)), tmp_path) is None
    # A token pasted where the path belongs is one word too: no message repeats the value.
    token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.c2lnbmF0dXJl"
    for value, problem in ((token, "names no file"), (str(tmp_path), "names a directory or special file, not a kubeconfig file")):
        message = _under_engine(_provider(minimal_config, kubeconfig=value), tmp_path)
        assert message is not None
        assert f"sandbox-infra:cluster.provider.kubeconfig: {problem}; give the path of a readable kubeconfig" in message
        assert value not in message and "Traceback" not in message
    # Offline (render, check) the path is not this machine's business.
    spec_from_config(_provider(minimal_config, kubeconfig=token))


def test_an_unreadable_kubeconfig_is_named(minimal_config: dict[str, Any], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "cluster.yaml"
    kubeconfig.write_text("apiVersion: v1\n")
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == kubeconfig:  # root reads any mode bits, so the refusal is the file system's answer, simulated
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    message = _under_engine(_provider(minimal_config, kubeconfig=str(kubeconfig)), tmp_path)
    assert message is not None and "kubeconfig: names a file this user cannot read (Permission denied)" in message


def test_the_render_directory_is_writable_and_of_its_own(minimal_config: dict[str, Any], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    (project / "stacks").mkdir(parents=True)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for value in ("out", "out/nested/deeper", str(tmp_path / "elsewhere"), "~/rendered"):
        assert _under_engine(_provider(minimal_config, renderYamlToDirectory=value), project) is None, value
    for value, what in ((".", "the project folder"), (str(project), "the project folder"), ("stacks/", "the stacks folder"),
                        ("./stacks/../stacks", "the stacks folder"), ("~", "the home folder"), (str(home), "the home folder")):
        message = _under_engine(_provider(minimal_config, renderYamlToDirectory=value), project)
        assert message is not None, value
        # Long values are shortened in messages (a deep tmp_path is, under pytest-xdist).
        assert f"sandbox-infra:cluster.provider.renderYamlToDirectory{shown_value(('x',), value)}: is {what}" in message
        assert "name a directory of its own" in message
    (project / "a-file").write_text("x")
    message = _under_engine(_provider(minimal_config, renderYamlToDirectory="a-file"), project)
    assert message is not None and "renderYamlToDirectory = 'a-file': names a file" in message
    message = _under_engine(_provider(minimal_config, renderYamlToDirectory="a-file/out"), project)
    assert message is not None and "cannot be created:" in message and "a-file is a file" in message


def test_a_render_directory_that_takes_no_files_is_named(minimal_config: dict[str, Any], tmp_path: Path) -> None:
    """Tried for real: sysfs refuses new files even to root, whom os.access would wave through."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("/sys takes files on this machine: no directory to show a refusal with")
    except OSError:
        pass
    message = _under_engine(_provider(minimal_config, renderYamlToDirectory="/sys/sandbox-infra-out"), tmp_path)
    assert message is not None
    assert "renderYamlToDirectory = '/sys/sandbox-infra-out': is not writable: cannot create files in /sys" in message
