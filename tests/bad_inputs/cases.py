"""The bad-input corpus: what a careless or hostile user feeds the command line, and the
message each must produce (exit 2, no traceback, no planted secret in any output).

Every case starts from BASE, a small valid project (its `render` passes: see
test_bad_inputs.py), and overwrites or adds files. `{root}` in args is the case's
directory. Stack-config cases (`render`) whose stack file the engine itself can read
are also run as the Pulumi program under mocks (test_bad_inputs.py).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

SECRET = "PLANTED-SECRET-9f3c2e"
"""Planted in secret values; must never appear in any output."""

STACK = """\
config:
  sandbox-infra:cluster:
    name: dev
    environment: dev
  sandbox-infra:tenants:
    - name: agents-dev
  sandbox-infra:templates:
    - name: python
      tenant: agents-dev
      image: ghcr.io/example/python:3.12
      port: 8888
      resources:
        requests: {cpu: 250m, memory: 512Mi}
        limits: {cpu: "1", memory: 1Gi}
  sandbox-infra:warmPools:
    - name: python
      template: python
      replicas: 2
"""

PROJECT_LAYER = """\
config:
  sandbox-infra:policy:
    maxWarmPoolReplicas: 20
"""

FLEET = """\
waves:
  - name: canary
    stacks: [dev]
"""

BASE = {"stacks/Pulumi.dev.yaml": STACK, "stacks/layers/project.yaml": PROJECT_LAYER, "stacks/fleet.yaml": FLEET}

KUBEVIRT = """\
  sandbox-infra:kubevirt:
    install: managed
"""

VM_RUNTIME = f"""\
  sandbox-infra:runtimes:
    - id: devbox
      executionKind: kubevirt-vm
      tenant: agents-dev
      vmConfig:
        containerDiskImage: quay.io/containerdisks/fedora:40
        cpu: 2
        memory: 2Gi
        cloudInitTemplate: "#cloud-config\\npassword: {SECRET}"
"""

BOMB = "\n".join(
    ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
) + "\n"

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: agents}
spec:
  containers: [{name: c, image: ghcr.io/example/app:1.0}]
"""


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    expect: str | tuple[str, ...]
    """Parts of the error message (stderr) that name the problem and where it is."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    stdin: bytes = b""


def stack(extra: str = "", replace: tuple[str, str] | None = None) -> str:
    text = STACK if replace is None else STACK.replace(*replace)
    assert replace is None or text != STACK, replace
    return text + extra


RENDER = ["render", "--stack", "dev"]
EXPLAIN = ["config", "explain", "--stack", "dev"]

CASES = [
    # --- would have been tracebacks ---------------------------------------------------
    Case("stack-not-utf8", RENDER, "stacks/Pulumi.dev.yaml, line 19, column 6: is not UTF-8 text (byte 0xe9)",
         {"stacks/Pulumi.dev.yaml": STACK.encode() + b"# caf\xe9\n"}),
    Case("layer-utf16", RENDER, "stacks/layers/project.yaml: is UTF-16 encoded; save it as UTF-8",
         {"stacks/layers/project.yaml": codecs.BOM_UTF16_LE + PROJECT_LAYER.encode("utf-16-le")}),
    Case("deep-nesting", RENDER, "nested more than 64 levels deep",
         {"stacks/Pulumi.dev.yaml": stack("  sandbox-infra:policy: " + "[" * 5000 + "\n")}),
    Case("int-key-under-config", RENDER, "config has the key '123', which YAML reads as a number, not a string",
         {"stacks/Pulumi.dev.yaml": stack("  123: x\n")}),
    Case("yes-key-under-config", EXPLAIN, "config has the key 'yes', which YAML reads as a boolean",
         {"stacks/Pulumi.dev.yaml": stack("  yes: x\n")}),
    Case("list-as-pool-name-in-layer", RENDER, "sandbox-infra:warmPools[0].name: must be a string",
         {"stacks/layers/project.yaml": PROJECT_LAYER + "  sandbox-infra:warmPools:\n    - name: [python]\n"
                                                        "      replicas: 3\n"}),
    Case("list-as-pool-name-in-stack", RENDER, "sandbox-infra:warmPools[0].name: must be a string",
         {"stacks/Pulumi.dev.yaml": stack(replace=("    - name: python\n      template", "    - name: [python]\n"
                                                                                      "      template"))}),
    Case("check-control-characters", ["check", "-f", "{root}/in.yaml"], "contains the control character U+0007",
         {"in.yaml": POD.replace("name: p,", "name: p\x07,")}),
    Case("check-kind-is-a-list", ["check", "-f", "{root}/in.yaml"], "document 1 (line 1): kind must be a non-empty string",
         {"in.yaml": POD.replace("kind: Pod", "kind: [Pod]")}),
    Case("check-containers-is-a-mapping", ["check", "-f", "{root}/in.yaml"],
         "document 1 (line 1): spec.containers must be a list",
         {"in.yaml": POD.replace("containers: [{name: c, image: ghcr.io/example/app:1.0}]",
                                 "containers: {name: c, securityContext: {privileged: true}}")}),
    Case("check-vm-volumes-is-a-mapping", ["check", "-f", "{root}/in.yaml"],
         "document 1 (line 1): spec.template.spec.volumes must be a list",
         {"in.yaml": "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm, namespace: agents}\n"
                     "spec:\n  template:\n    spec:\n      domain: {devices: {}}\n"
                     f"      volumes: {{cloudInitNoCloud: {{userData: '#cloud-config password: {SECRET}'}}}}\n"}),
    # Refused by the schema before any rule reads it (the rules' own guard stays behind it).
    Case("check-unreadable-field", ["check", "-f", "{root}/in.yaml"],
         "in.yaml:1 (NetworkPolicy agents/deny): spec.policyTypes[0]: must be of type string, not a list",
         {"in.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: agents}\n"
                     "spec: {podSelector: {}, policyTypes: [[Ingress], [Egress]]}\n"}),
    Case("fleet-tab", ["fleet", "render"],
         "stacks/fleet.yaml, line 2, column 1: not valid YAML (in waves): found character that cannot start any token (a tab",
         {"stacks/fleet.yaml": "waves:\n\t- name: canary\n"}),
    Case("render-out-existing-file", [*RENDER, "--out", "{root}/taken"], "is an existing file, not a directory",
         {"taken": "user data\n"}),
    Case("render-out-dangling-symlink", [*RENDER, "--out", "{root}/link"], "is a dangling symbolic link",
         {"link": "@symlink:{root}/nowhere"}),
    Case("render-out-under-a-file", [*RENDER, "--out", "{root}/taken/out"], "is a file, not a directory",
         {"taken": "user data\n"}),
    Case("fleet-render-out-non-empty", ["fleet", "render", "--out", "{root}/out"], "directory is not empty",
         {"out/keep.txt": "user data\n"}),
    Case("size-plot-unknown-format", ["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99",
                                      "--plot", "{root}/chart.xyz"], "unknown image format '.xyz'"),
    Case("malformed-upstream-url", RENDER, "sandbox-infra:kubevirt.operatorManifest.url = 'https://[::1/op.yaml': "
                                           "must be a well-formed https URL",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + "    operatorManifest: {url: 'https://[::1/op.yaml'}\n")}),
    # --- would have hung -----------------------------------------------------------------
    Case("alias-bomb-in-stack", RENDER, "(a YAML alias bomb?)",
         {"stacks/Pulumi.dev.yaml": stack("  sandbox-infra:catalogue:\n" + "".join(f"    {line}\n" for line in
                                                                                   BOMB.splitlines()))}),
    Case("alias-bomb-in-layer", RENDER, "stacks/layers/project.yaml, line", {"stacks/layers/project.yaml": BOMB}),
    Case("alias-bomb-in-fleet", ["fleet", "render"], "(a YAML alias bomb?)", {"stacks/fleet.yaml": BOMB}),
    Case("recursive-alias", RENDER, "sandbox-infra:policy.allowedRegistries[0] contains an alias to itself",
         {"stacks/Pulumi.dev.yaml": stack("  sandbox-infra:policy: &p\n    allowedRegistries: [*p]\n")}),
    Case("recursive-alias-in-check", ["check", "-f", "-"], "metadata.labels.self contains an alias to itself",
         stdin=POD.replace("metadata: {name: p, namespace: agents}",
                           "metadata: &m {name: p, namespace: agents, labels: {self: *m}}").encode()),
    # --- would have leaked a secret ------------------------------------------------------
    Case("syntax-error-inside-a-secret", RENDER, "stacks/Pulumi.dev.yaml, line 31, column 1: not valid YAML "
                                                 "(in config.sandbox-infra:runtimes[0].vmConfig.cloudInitTemplate):",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME.replace(
             f'"#cloud-config\\npassword: {SECRET}"', f'["#cloud-config", {SECRET}: [x\n'))}),
    Case("non-yaml-fleet-file", ["fleet", "--fleet", "{root}/notes.txt", "render"],
         "notes.txt: a fleet file must be a mapping with a 'waves:' list; got str",
         {"notes.txt": f"my notes, do not share {SECRET}\nmore notes\n"}),
    Case("yaml-but-not-a-fleet-file", ["fleet", "--fleet", "{root}/kubeconfig", "render"], "users: unknown key",
         {"kubeconfig": f"apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {{token: {SECRET}}}\n"}),
    Case("plain-text-kubeconfig", EXPLAIN, "sandbox-infra:cluster.provider.kubeconfig: must be a Pulumi secret",
         {"stacks/Pulumi.dev.yaml": stack(replace=("    environment: dev\n", "    environment: dev\n    provider:\n"
                                                   f"      kubeconfig: 'apiVersion: v1\n\n        users: [{{user: "
                                                   f"{{token: {SECRET}}}}}]'\n"))}),
    Case("one-line-credential-as-kubeconfig", EXPLAIN, "cluster.provider.kubeconfig: must be a Pulumi secret",
         {"stacks/Pulumi.dev.yaml": stack(replace=("    environment: dev\n", "    environment: dev\n    provider:\n"
                                                   f"      kubeconfig: Bearer {SECRET}\n"))}),
    Case("plain-text-cloud-init", EXPLAIN, "vmConfig.cloudInitTemplate: must be a Pulumi secret",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME)}),
    Case("secret-at-an-unknown-key", RENDER, "cloudInitTemplat: unknown key (did you mean 'cloudInitTemplate'?)",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME.replace("cloudInitTemplate:", "cloudInitTemplat:"))}),
    Case("secret-of-the-wrong-type", RENDER, "sshAuthorizedKeys: must be a Pulumi secret",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME.replace(
             "        cloudInitTemplate:", f"        sshAuthorizedKeys: [{SECRET}]\n        cloudInitTemplate:"))}),
    # --- would have been accepted ---------------------------------------------------------
    Case("duplicate-key-inside-a-secret", RENDER, "sandbox-infra:runtimes[0].vmConfig.cloudInitTemplate has a key twice",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME.replace(
             f'"#cloud-config\\npassword: {SECRET}"', f"{{{SECRET}: 1, {SECRET}: 2}}"))}),
    Case("duplicate-key", RENDER, "sandbox-infra:warmPools[0] has the key 'replicas' twice (first at line",
         {"stacks/Pulumi.dev.yaml": stack("      replicas: 3\n")}),
    Case("misspelt-top-level-key-in-layer", RENDER, "confg: unknown top-level key (did you mean 'config'?)",
         {"stacks/layers/project.yaml": PROJECT_LAYER.replace("config:", "confg:")}),
    Case("misspelt-namespace", RENDER, "sandbox-infr:warmPools: unknown config namespace 'sandbox-infr' "
                                       "(did you mean 'sandbox-infra:warmPools'?)",
         {"stacks/Pulumi.dev.yaml": stack(replace=("sandbox-infra:warmPools", "sandbox-infr:warmPools"))}),
    Case("misspelt-nested-key", RENDER, "sandbox-infra:warmPools[0].replica: unknown key (did you mean 'replicas'?)",
         {"stacks/Pulumi.dev.yaml": stack(replace=("replicas: 2", "replica: 2"))}),
    Case("misspelt-namespace-in-layer", RENDER, "(did you mean 'sandbox-infra:policy'?)",
         {"stacks/layers/project.yaml": PROJECT_LAYER.replace("sandbox-infra:", "sandbox-infa:")}),
    Case("pool-listed-twice", RENDER, "sandbox-infra:warmPools[1].name = 'python': entry listed twice in this file",
         {"stacks/Pulumi.dev.yaml": stack("    - name: python\n      template: python\n      replicas: 5\n")}),
    Case("pool-listed-twice-in-layer", RENDER, "entry listed twice in this file",
         {"stacks/layers/project.yaml": PROJECT_LAYER + "  sandbox-infra:warmPools:\n    - {name: python, replicas: 1}\n"
                                                        "    - {name: python, replicas: 4}\n"}),
    *[Case(f"tenant-named-{name}", RENDER, f"sandbox-infra:tenants[0].name = '{name}': '{name}' is a system namespace",
           {"stacks/Pulumi.dev.yaml": stack(replace=("agents-dev", name))})
      for name in ("kube-system", "kubevirt", "agent-sandbox-system", "default")],
    Case("catalogue-in-kube-system", RENDER, "sandbox-infra:catalogue.namespace = 'kube-system'",
         {"stacks/Pulumi.dev.yaml": stack("  sandbox-infra:catalogue: {namespace: kube-system}\n")}),
    Case("replicas-true", RENDER, "sandbox-infra:warmPools[0].replicas = True: input should be a valid integer",
         {"stacks/Pulumi.dev.yaml": stack(replace=("replicas: 2", "replicas: true"))}),
    Case("port-as-string", RENDER, "sandbox-infra:templates[0].port = '8888': input should be a valid integer",
         {"stacks/Pulumi.dev.yaml": stack(replace=("port: 8888", "port: '8888'"))}),
    Case("bool-as-number", RENDER, "sandbox-infra:cluster.waitForWorkloads = 1: input should be a valid boolean",
         {"stacks/Pulumi.dev.yaml": stack(replace=("    environment: dev\n",
                                                   "    environment: dev\n    waitForWorkloads: 1\n"))}),
    Case("invalid-label-key", RENDER, "key 'team name': the name must be 1-63",
         {"stacks/Pulumi.dev.yaml": stack(replace=("      port: 8888\n", "      port: 8888\n      labels: {'team name': x}\n"))}),
    Case("invalid-label-value", RENDER, "value of 'team' must be at most 63",
         {"stacks/Pulumi.dev.yaml": stack(replace=("      port: 8888\n", "      port: 8888\n      labels: {team: 'a b'}\n"))}),
    Case("invalid-node-selector-key", RENDER, "sandbox-infra:kubevirt.workloads.nodeSelector: key 'gpu/': the name",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + "    workloads: {nodeSelector: {'gpu/': 'true'}}\n")}),
    Case("invalid-toleration-key", RENDER, "key 'Bad_Prefix/x': the prefix before '/' must be a DNS subdomain",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + "    infra: {tolerations: [{key: Bad_Prefix/x}]}\n")}),
    Case("vm-runtime-id-not-a-service-name", RENDER, "sandbox-infra:runtimes[0].id = '1box': must start with a letter",
         {"stacks/Pulumi.dev.yaml": stack(KUBEVIRT + VM_RUNTIME.replace("id: devbox", "id: 1box").replace(
             f'"#cloud-config\\npassword: {SECRET}"', "{secure: v1:abc}"))}),
    Case("secure-value-in-a-layer", RENDER, "sandbox-infra:runtimes[0].vmConfig.cloudInitTemplate: is a 'secure:' value "
                                            "in a layer file",
         {"stacks/layers/project.yaml": PROJECT_LAYER + KUBEVIRT + VM_RUNTIME.replace(
             f'"#cloud-config\\npassword: {SECRET}"', "{secure: v1:abc}")}),
    Case("check-empty-stdin", ["check", "-f", "-"], "-f -: holds no Kubernetes objects"),
    Case("check-only-comments", ["check", "-f", "{root}/in.yaml"], "holds no Kubernetes objects",
         {"in.yaml": "# nothing here\n---\n---\n"}),
    Case("check-items-not-a-list", ["check", "-f", "-"], "items must be a list of Kubernetes objects",
         stdin=b"apiVersion: v1\nkind: List\nitems: {a: 1}\n"),
    Case("stack-holds-two-documents", RENDER, "holds 2 YAML documents; expected one",
         {"stacks/Pulumi.dev.yaml": STACK + "---\n" + STACK}),
    # --- messages that named the wrong thing ---------------------------------------------
    Case("missing-config", RENDER, "config: required key is missing",
         {"stacks/Pulumi.dev.yaml": "encryptionsalt: v1:abc\n"}),
    Case("empty-stack-file", RENDER, "a stack file must be a mapping with a 'config:' mapping", {"stacks/Pulumi.dev.yaml": ""}),
    Case("infinite-ready-time", RENDER, ("sandbox-infra:warmPools[0].slo.readyTime = '99999", "...: is too large"),
         {"stacks/Pulumi.dev.yaml": stack(replace=("      replicas: 2\n", "      slo: {claimRate: 30/min, readyTime: "
                                                   + "9" * 400 + "s, hitRatio: 0.99}\n"))}),
    Case("size-ready-overflow", ["size", "--rate", "30/min", "--ready", "9" * 400 + "s", "--target", "0.99"],
         "--ready '999", ),
    Case("size-ready-cv-nan", ["size", "--rate", "30/min", "--ready", "8s", "--p99-latency", "2s", "--ready-cv", "nan"],
         "--ready-cv nan: ready-time cv must be between 0 and 10"),
]

# Command-line arguments that point outside what they should.
CASES += [
    Case("stack-name-leaves-the-directory", ["render", "--stack", "../stacks/Pulumi.dev"],
         "--stack: no stack named '../stacks/Pulumi.dev'", {"Pulumi.dev.yaml": STACK}),
    Case("stacks-dir-missing", ["--stacks-dir", "{root}/nowhere", "render", "--stack", "dev"],
         "--stacks-dir {root}/nowhere: no such directory"),
    Case("diff-base-looks-like-an-option", ["diff", "--stack", "dev", "--base=--output=x"],
         "--base --output=x: a git ref cannot start with '-'"),
]
