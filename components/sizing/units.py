"""Rates and durations as people write them: `30/min`, `0.5/s`, `8s`, `2m`."""

from __future__ import annotations

import math
import re

_NUMBER = r"(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
_RATE = re.compile(rf"^{_NUMBER}\s*/\s*(?P<unit>s|sec|second|m|min|minute|h|hr|hour)$")
_DURATION = re.compile(rf"^{_NUMBER}\s*(?P<unit>ms|s|m|min|h)$")
_PER_SECOND = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hr": 3600.0,
               "hour": 3600.0}
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}

RATE_HELP = "a rate such as 30/min, 0.5/s or 1200/h"
DURATION_HELP = "a duration such as 8s, 90s, 2m or 500ms"


def parse_rate(text: str) -> float:
    """Claims per second from `30/min`, `0.5/s`, `1200/h`."""
    match = _RATE.match(str(text).strip())
    if match is None:
        raise ValueError(f"must be {RATE_HELP}")
    return _finite(float(match["num"]) / _PER_SECOND[match["unit"]])


def parse_duration(text: str) -> float:
    """Seconds from `8s`, `2m`, `500ms`, `1h`."""
    match = _DURATION.match(str(text).strip())
    if match is None:
        raise ValueError(f"must be {DURATION_HELP}")
    return _finite(float(match["num"]) * _SECONDS[match["unit"]])


def _finite(value: float) -> float:
    # 400 digits parse as float infinity, which no model can size for.
    if not math.isfinite(value) or value > 1e12:
        raise ValueError("is too large (at most 1e12)")
    return value


def format_rate(per_second: float) -> str:
    return f"{_trim(per_second * 60)}/min"


def format_duration(seconds: float) -> str:
    return f"{_trim(seconds)}s"


def _trim(value: float) -> str:
    if math.isclose(value, round(value), abs_tol=1e-9):
        return str(round(value))
    return f"{value:.6g}"
