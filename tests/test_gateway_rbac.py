"""The gateway's verbs are written down once: docs/gateway.md's table and GATEWAY_ACCESS agree,
and the tenant Role generated from them is the one the stacks always shipped."""

from __future__ import annotations

import re

from components.manifests.catalogue import READER_ROLE
from components.manifests.stack import render_stack
from components.manifests.tenant import CLAIMER_ROLE, GATEWAY_ACCESS, GATEWAY_CATALOGUE_VERBS, claimer_rules
from components.specs.loader import load_stack
from components.specs.stack_files import PROJECT_ROOT
from components.upstream import UpstreamLoader

DOC = PROJECT_ROOT / "docs" / "gateway.md"


def _doc_rows() -> list[list[str]]:
    text = DOC.read_text()
    table = text[text.index("<!-- gateway-verbs: begin -->"):text.index("<!-- gateway-verbs: end -->")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    return rows[2:]  # header and separator


def _verbs(cell: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in cell.split(","))


def test_the_docs_table_lists_exactly_the_verbs_in_the_code() -> None:
    tenant, catalogue = {}, []
    for where, group, resource, verbs, _why in _doc_rows():
        group, resource = group.strip("`"), resource.strip("`")
        if where == "tenant namespace":
            tenant[(group, resource)] = _verbs(verbs)
        else:
            assert re.search(r"catalogue", where) and resource == "configmaps" and group == "(core)", where
            catalogue.append(_verbs(verbs))
    assert tenant == GATEWAY_ACCESS
    assert catalogue == [GATEWAY_CATALOGUE_VERBS]


def test_the_generated_role_is_the_one_the_stacks_shipped_before() -> None:
    # The hand-written rules this Role had before it was generated (same Role, so no diff on `up`).
    assert claimer_rules() == [
        {"apiGroups": ["extensions.agents.x-k8s.io"], "resources": ["sandboxclaims"],
         "verbs": ["create", "delete", "get", "list", "watch"]},
        {"apiGroups": ["agents.x-k8s.io"], "resources": ["sandboxes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["extensions.agents.x-k8s.io"], "resources": ["sandboxtemplates", "sandboxwarmpools"],
         "verbs": ["get", "list", "watch"]},
    ]


def test_every_rendered_gateway_role_comes_from_the_list(loader: UpstreamLoader) -> None:
    manifests = render_stack(load_stack("dev"), loader)
    roles = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Role"}
    assert roles[CLAIMER_ROLE]["rules"] == claimer_rules()
    assert [rule["verbs"] for rule in roles[READER_ROLE]["rules"]] == [list(GATEWAY_CATALOGUE_VERBS)]
    # Claims are never patched or updated, pods never touched: a verb added to the list shows up here.
    granted = {verb for verbs in GATEWAY_ACCESS.values() for verb in verbs}
    assert granted == {"create", "delete", "get", "list", "watch"}
    assert not any(resource.startswith("pods") for _group, resource in GATEWAY_ACCESS)
