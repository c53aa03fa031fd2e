"""`python -m sandbox_infra size`: text, JSON, plot, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.sizing.model import HitRatioTarget, ReadyTime, erlang_b, size_pool
from sandbox_infra.cli import main

PROJECT = Path(__file__).resolve().parents[1]


def test_json_has_the_four_figures_and_the_alerts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["replicas", "hitRatio", "idleReplicas", "idlePodHoursPerDay", "alerts"]
    assert out["replicas"] == 10
    assert out["hitRatio"] == pytest.approx(1 - erlang_b(10, 4.0), abs=1e-6)
    assert out["idleReplicas"] == pytest.approx(10 - 4 * out["hitRatio"], abs=1e-3)
    assert out["idlePodHoursPerDay"] == pytest.approx(24 * out["idleReplicas"], abs=0.01)


def test_alert_thresholds_are_the_sre_workbooks_for_a_30_day_window(capsys: pytest.CaptureFixture[str]) -> None:
    # Google SRE workbook, table 5-8: 2 % of a 30-day budget in 1h is a burn rate of 14.4, 5 % in
    # 6h is 6, 10 % in 1d is 3 and 10 % in 3d is 1; times a 1 % budget they are the miss ratios.
    assert main(["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "-o", "json"]) == 0
    alerts = json.loads(capsys.readouterr().out)["alerts"]
    assert alerts["sloWindow"] == "30d" and alerts["missBudget"] == pytest.approx(0.01)
    assert [(a["severity"], a["longWindow"], a["shortWindow"], a["burnRate"]) for a in alerts["burnRate"]] == [
        ("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6), ("ticket", "1d", "2h", 3), ("ticket", "3d", "6h", 1)]
    assert [a["missRatio"] for a in alerts["burnRate"]] == pytest.approx([0.144, 0.06, 0.03, 0.01])
    # One miss must not fire an alert on its own: the guard holds at least 1 / threshold claims.
    assert [a["minClaims"] for a in alerts["burnRate"]] == [10, 17, 34, 100]
    # 10 replicas at 8 s carry 4 erlangs with B <= 1 % up to 4.46 erlangs: 33.5 claims/min.
    assert 30 < alerts["claimRatePerMinute"] < 1.2 * 33.5


def test_a_28_day_window_gives_sloths_burn_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--rate", "30/min", "--ready", "8s", "--target", "0.999", "--slo-window", "28d", "-o", "json"]) == 0
    alerts = json.loads(capsys.readouterr().out)["alerts"]
    assert [a["burnRate"] for a in alerts["burnRate"]] == pytest.approx([13.44, 5.6, 2.8, 0.9333], abs=1e-4)
    assert alerts["burnRate"][0]["missRatio"] == pytest.approx(0.01344)


def test_text_output_shows_the_alerts_beside_the_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--rate", "60/min", "--ready", "8s", "--target", "0.99"]) == 0
    out = capsys.readouterr().out
    assert "replicas:      15" in out
    assert "alerts it would generate (SLO window 30d, miss budget 0.01):" in out
    assert "page 1h:       miss ratio > 0.144 over 1h and 5m (burn rate 14.4; at least 10 claims)" in out
    assert "cold ready:    mean > 8s over 1h" in out


def test_simulation_confirms_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    # 30/min x 8 s = 4 erlangs: 10 replicas miss 1 - B(10, 4) = 0.53 % of claims; the simulated
    # hit ratio over 30,000 claims must agree within four standard errors.
    assert main(["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "-o", "json", "--simulate", "30000"]) == 0
    out = json.loads(capsys.readouterr().out)
    simulated = out["simulated"]
    assert simulated["claims"] >= 27_000
    assert abs(simulated["hitRatio"] - out["hitRatio"]) < 4 * simulated["standardError"] + 1e-3


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--rate", "0.5/s", "--ready", "8000ms", "--target", "0.99"]) == 0
    out = capsys.readouterr().out
    assert "replicas:      10" in out
    assert "hit ratio:     0.9947" in out
    assert "pod-hours/day" in out
    assert "naive rule:    ceil(rate x ready) = 4 replicas -> hit ratio 0.6893" in out


def test_latency_target_and_profile(capsys: pytest.CaptureFixture[str]) -> None:
    profile = ",".join(["5/min"] * 12 + ["60/min"] * 12)
    assert main(["size", "--rate", profile, "--ready", "8s", "--p99-latency", "3s", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rates = [5 / 60] * 12 + [1.0] * 12
    assert out["replicas"] == size_pool(rates, ReadyTime(8, 0.5), HitRatioTarget(0.99)).replicas  # 3s << 8s


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "sizing.png"
    assert main(["size", "--rate", "30/min", "--ready", "8s", "--target", "0.99", "--plot", str(target)]) == 0
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert f"wrote {target}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "30", "--ready", "8s", "--target", "0.99"], "error: --rate '30': must be a rate such as 30/min"),
        (["--rate", "30/min", "--ready", "soon", "--target", "0.99"], "error: --ready 'soon': must be a duration"),
        (["--rate", "30/min", "--ready", "8s", "--target", "1.5"], "error: --target 1.5: hit-ratio target must be between 0 and 1"),
        (["--rate", "1/min,2/min", "--ready", "8s", "--target", "0.9"], "give one rate or 24 comma-separated hourly rates, got 2"),
        (["--rate", "5000/min", "--ready", "2m", "--target", "0.99"], "needs more than 1000 replicas"),
        (["--rate", "30/min", "--ready", "8s", "--p99-latency", "0.05s"], "must exceed the 0.1 s a warm claim takes"),
        (["--rate", "30/min", "--ready", "8s"], "error: size: give exactly one of --target RATIO or --p99-latency DURATION"),
        (["--rate", "30/min", "--ready", "8s", "--target", "0.9", "--p99-latency", "2s"], "give exactly one of --target"),
        (["--rate", "1/min,2/min" + ",1/min" * 22, "--ready", "8s", "--target", "0.9", "--simulate", "5000"],
         "--simulate 5000: simulates one steady claim rate; give --rate one rate"),
        (["--rate", "30/min", "--ready", "8s", "--target", "0.99", "--slo-window", "2w"],
         "error: --slo-window '2w': must be a whole number of days or hours such as 30d, 28d or 168h"),
        (["--rate", "30/min", "--ready", "8s", "--target", "0.99", "--slo-window", "365d"],
         "error: --slo-window '365d': must be between 1d and 90d"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", *args]) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert "Traceback" not in err


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox_infra", "size", "--rate", "30/min", "--ready", "8s", "--target", "0.99",
         "--format", "json"],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    )
    assert json.loads(result.stdout)["replicas"] == 10
