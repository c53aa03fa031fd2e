"""Monitoring of the warm pools' SLOs: what the stack asks Prometheus and Grafana to watch.

Off unless a stack turns it on (staging and prod do, in their environment layers): the
objects are custom resources of the Prometheus Operator, which the cluster must run.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from ..sizing.alerts import DEFAULT_MIN_CLAIMS, DEFAULT_SLO_WINDOW, slo_window_seconds
from .base import DnsLabel, Spec, UserLabels


def _slo_window(value: str) -> str:
    slo_window_seconds(value)
    return value


def _interval(value: str) -> str:
    if not re.match(r"^[1-9][0-9]*(s|m)$", value):
        raise ValueError("must be a Prometheus duration in whole seconds or minutes such as 30s or 1m")
    return value


# Where teams publish this repository's docs differs; set runbookUrl to your copy.
DEFAULT_RUNBOOK_URL = "https://github.com/example/sandbox-infra/blob/main/docs/monitoring.md"

SloWindow = Annotated[str, AfterValidator(_slo_window)]
ScrapeInterval = Annotated[str, AfterValidator(_interval)]


class MonitoringSpec(Spec):
    """A ServiceMonitor for the controller, a PrometheusRule with each pool's SLI and alerts,
    and a Grafana dashboard (docs/monitoring.md)."""

    enabled: bool = False
    """Render the monitoring objects (needs the Prometheus Operator's CRDs in the cluster)."""
    slo_window: SloWindow = DEFAULT_SLO_WINDOW
    """The period each pool's SLO holds over; the burn-rate thresholds follow from it."""
    min_claims: int = Field(default=DEFAULT_MIN_CLAIMS, ge=1, le=100_000)
    """No burn-rate alert fires on fewer claims than this in its long window (and never on
    a single miss): at a low claim rate one cold start must not page."""
    scrape_interval: ScrapeInterval = "30s"
    labels: UserLabels = {}
    """Extra labels on the ServiceMonitor and PrometheusRule, for the Prometheus's
    serviceMonitorSelector and ruleSelector (e.g. release: kube-prometheus-stack)."""
    runbook_url: str = Field(default=DEFAULT_RUNBOOK_URL, pattern=r"^https?://[^\s#]+$")
    """Where docs/monitoring.md is published; each alert links to its section (`#<alert name>`)."""
    dashboard: bool = True
    """A Grafana dashboard ConfigMap, labelled for the Grafana sidecar (grafana_dashboard: "1")."""
    dashboard_namespace: DnsLabel | None = None
    """Where the dashboard ConfigMap goes; default: the controller's namespace."""
