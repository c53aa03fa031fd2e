"""docs/components.md, generated from the components' own docstrings:
`python -m components.reference > docs/components.md` (a test keeps the two equal).

Args fields and component attributes are documented where they are declared (a
docstring under each); this reads them from the source, as documentation tools do.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import textwrap

import components

COMPONENTS = [name for name in components.__all__ if f"{name}Args" in components.__all__]


def attribute_docs(cls: type) -> dict[str, tuple[str, str]]:
    """{attribute: (annotation, docstring)} for the annotated attributes declared in a class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found: dict[str, tuple[str, str]] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                doc = inspect.cleandoc(str(following.value.value))
            found[node.target.id] = (ast.unparse(node.annotation), doc)
    return found


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f"`{field.default_factory.__name__}()`"  # type: ignore[union-attr]
    return "required"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# The component package (sandbox_infra/package.py): how programs in other languages use the components.
PACKAGE_SECTION = [
    "`AgentSandbox`, `Tenant`, `SandboxTemplate`, `WarmPool`, `KubeVirt`, `AdmissionPolicies` and",
    "`VmEnvironment` are also a Pulumi component package,",
    "`sandbox-infra` ([provider/](../provider/): `PulumiPlugin.yaml`, runtime python), so that programs",
    "in other Pulumi languages declare them like resources of any provider (tried here: YAML). Its schema,",
    "[provider/schema.json](../provider/schema.json), is inferred from the args classes below",
    "(`make schema` writes it; a test fails when it is stale): the same fields in camelCase, the same",
    "required fields and descriptions; `spec` is an object typed by the model (the keys of",
    "[config.md](config.md)); a component passed to another is a resource reference.",
    "",
    "Pulumi YAML ([examples/yaml-warm-pool/](../examples/yaml-warm-pool/Pulumi.yaml), run by the e2e",
    "suite on a live API server):",
    "",
    "```yaml",
    "packages:",
    "  sandbox-infra: ../../provider      # or: pulumi package add <checkout>/provider",
    "resources:",
    "  install:",
    "    type: sandbox-infra:AgentSandbox",
    "  team:",
    "    type: sandbox-infra:Tenant",
    "    properties:",
    "      spec: {name: team-a}",
    "  python:",
    "    type: sandbox-infra:SandboxTemplate",
    "    properties:",
    "      install: ${install}",
    "      tenant: ${team}",
    "      spec: {name: python, image: registry.example.com/sandboxes/python:3.12,",
    "             resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {cpu: \"1\", memory: 1Gi}}}",
    "  pool:",
    "    type: sandbox-infra:WarmPool",
    "    properties:",
    "      template: ${python}",
    "      spec: {name: python, replicas: 3}",
    "```",
    "",
    "- The plugin runs the components in the checkout's virtualenv (`make setup`; `PulumiPlugin.yaml`",
    "  names `../.venv`). `pulumi package add` / `packages:` install the plugin's dependencies (the",
    "  Pulumi packages in that virtualenv) first.",
    "- Bad input fails `preview` with one message and no Python stack: YAML's type checker rejects an",
    "  unknown key or a wrong type against the schema; the component's own validation (a DNS name, a",
    "  pool whose `spec.template` is not the template passed, ...) names the key path and value.",
    "- `spec` and `waitForWorkloads` are plain values, known at preview (they decide which objects",
    "  exist): not another resource's outputs, and not secrets (objects are stored in plain text).",
    "  A SandboxTemplate's `image` may be another resource's output (it overrides `spec.image`).",
    "  `install`, `tenant`, `template`, `kubevirt`, and the lists of `RuntimeCatalogue` and",
    "  `Monitoring` (`templates`, `pools`, `vmEnvironments`, `tenants`) must be components declared",
    "  in the same program (`${name}`): the plugin resolves them to the components it built.",
    "- Secrets: `VmEnvironment`'s `spec.vmConfig.cloudInitTemplate` and `sshAuthorizedKeys` are",
    "  `secret` in the schema and the only fields that take a secret or another resource's output",
    "  (YAML: a `secret: true` config value, `fn::secret`, `${key.publicKeyOpenssh}`); whatever is",
    "  given is stored only encrypted (the VM's Secrets), and a value unknown at preview is fine.",
    "- Outputs are the attributes listed below, in camelCase (`${team.namespace}`, `${pool.apiVersion}`).",
    "- A WarmPool with `spec.waitForReady` makes `pulumi up` wait for its pool as in Python (ready;",
    "  fails at once on a pod the kubelet cannot start, e.g. CreateContainerConfigError; fails at",
    "  `readyTimeout`), with the same messages. In Python that wait is a dynamic resource; the engine",
    "  runs those with the *program's* virtualenv, which a YAML program does not have, so from the",
    "  package the wait is a resource of the package's own provider (`sandbox-infra:index:PoolReadiness`,",
    "  a child of the WarmPool). It reads the cluster the pool's objects go to: the Kubernetes provider",
    "  passed to the WarmPool (`options: {providers: [${k8s}]}`: its kubeconfig and context), else the",
    "  stack's `kubernetes:kubeconfig` / `kubernetes:context` config, else the ambient kubeconfig",
    "  (`$KUBECONFIG`, `~/.kube/config`) and its current context, as a default provider does. The",
    "  kubeconfig is kept as a secret in the state. (`kubeconfig`, `context` and `keda` of",
    "  WarmPoolArgs and `crds` of MonitoringArgs are Python-only: the package fills in the first two;",
    "  the last two are lookups of CRDs another install owns, which the package does not serve.)",
    "",
    "TypeScript: not done here. `pulumi package add` generates a TypeScript SDK from the same schema,",
    "but running it needs the `pulumi-language-nodejs` host, whose Go module",
    "(`github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3`) the module proxy refuses",
    "(403 \"This module version is not available\", checked at v3.274.1), and `@pulumi/pulumi` >= 3.249 needs Node >= 22",
    "while this machine has Node v20.20.2. Nothing in the package is YAML-specific.",
]


def render() -> str:
    lines = [
        "# Components reference",
        "",
        "<!-- Generated by `python -m components.reference > docs/components.md`; edit the docstrings instead. -->",
        "",
        "Every component takes `(name, args, opts)`, as the components of pulumi-eks and awsx do:",
        "`name` is the Pulumi resource name (part of the URN; keep it stable), `args` its args class,",
        "`opts` the usual `pulumi.ResourceOptions`. The args classes follow one convention:",
        "",
        "- `spec` is the component's own settings: the model of `components.specs` (`TenantSpec`,",
        "  `TemplateSpec`, ...; keyword arguments in snake_case) or a mapping with the camelCase keys",
        "  of [config.md](config.md). Either way it is validated, and a bad value is one error naming",
        "  the key path, the value and what is allowed. No component takes the whole stack:",
        "  `RuntimeCatalogue` and `Monitoring` take their own settings and the components they list",
        "  (templates, pools, VM environments, tenants), `AdmissionPolicies` the policy settings.",
        "- Other components are passed as components (`install=`, `tenant=`, `template=`,",
        "  `kubevirt=`): the component reads what it needs from them (namespace, API version) and",
        "  waits for them. Any other dependency goes in `opts.depends_on` and reaches every child.",
        "- Fields that decide which objects exist are plain values. Two kinds of value may be another",
        "  resource's output (`pulumi.Output`): a spec's secret keys (a VM's `cloudInitTemplate` and",
        "  `sshAuthorizedKeys`: opaque anyway, stored only as Pulumi secrets, whether given as a",
        "  `SecretValue` from stack config or as an Output), and a plain value another resource gives,",
        "  which is an args field that overrides its spec key (a template's `image`): a known value is",
        "  checked at once, an Output once it resolves (unknown in a preview), with the message the",
        "  spec key gets.",
        "- Every attribute is a `pulumi.Output`, registered with `register_outputs`.",
        "",
        "All are importable from `components`; the models from `components.specs`. Programs that",
        "use them: [examples/](../examples/). `deploy` (components/stack.py) composes a whole stack",
        "from the same components, part by part from the stack's graph (components/manifests/graph.py),",
        "the graph `sandbox-infra render` lists offline.",
        "",
        "## From other languages",
        "",
        *PACKAGE_SECTION,
        "",
    ]
    for name in COMPONENTS:
        component, args = getattr(components, name), getattr(components, f"{name}Args")
        module = importlib.import_module(component.__module__)
        lines += [f"## {name}", "", inspect.cleandoc(component.__doc__ or ""), "",
                  f"`{name}(name: str, args: {name}Args, opts: pulumi.ResourceOptions | None = None)`"
                  f" (`{module.__name__}`)", "",
                  f"### {name}Args", "", "| field | type | default | what it is |", "| --- | --- | --- | --- |"]
        docs = attribute_docs(args)
        for field in dataclasses.fields(args):
            annotation, doc = docs[field.name]
            lines.append(f"| `{field.name}` | `{annotation}` | {_default(field)} | {_one_line(doc)} |")
        outputs = attribute_docs(component)
        if outputs:
            lines += ["", "### Attributes", "", "| attribute | type | what it is |", "| --- | --- | --- |"]
            lines += [f"| `{attr}` | `{annotation}` | {_one_line(doc)} |" for attr, (annotation, doc) in outputs.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
