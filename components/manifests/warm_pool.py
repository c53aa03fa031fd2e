"""SandboxWarmPool: pre-started sandboxes of one template."""

from __future__ import annotations

from ..specs.template import TemplateSpec
from ..specs.warm_pool import WarmPoolSpec
from .common import DOMAIN, GPU_OPT_IN_ANNOTATION, SKIP_AWAIT, Manifest, obj
from .sandbox_template import EXTENSIONS_GROUP, template_labels
from .sizing import sizing_annotations


def build_warm_pool(pool: WarmPoolSpec, template: TemplateSpec, api_version: str) -> Manifest:
    # The Kubernetes provider never waits for a pool: where `pulumi up` should (waitForReady), the
    # WarmPool component's PoolReadiness does, bounded and failing fast (components/pool_readiness.py).
    annotations = {SKIP_AWAIT: "true"}
    if pool.allow_gpu:
        annotations[GPU_OPT_IN_ANNOTATION] = "true"
    return obj(
        f"{EXTENSIONS_GROUP}/{api_version}", "SandboxWarmPool", pool.name, template.tenant,
        labels={**template_labels(template), f"{DOMAIN}/warm-pool": pool.name},
        annotations={**annotations, **sizing_annotations(pool)},
        spec={
            "replicas": pool.replicas,
            "sandboxTemplateRef": {"name": template.name},
            "updateStrategy": {"type": pool.update_strategy},
        },
    )
