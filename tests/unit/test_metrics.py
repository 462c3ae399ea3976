"""Statistics and rolling windows."""

from __future__ import annotations

import math

import pytest

from services.metrics.catalogue import Metrics
from services.metrics.stats import percentile, wilson
from services.metrics.windows import RollingWindows


def test_percentile_interpolates_and_handles_empty() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson(81, 263)  # Wilson (1927) style example: p = 0.308
    assert low == pytest.approx(0.2553, abs=1e-3) and high == pytest.approx(0.3662, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0)


def test_rolling_windows_report_tps_latency_and_success() -> None:
    now = [1_000.0]
    windows = RollingWindows(clock=lambda: now[0])
    for _ in range(12):
        for i in range(10):
            windows.record("settled", ok=i != 0, latency_ms=100.0 + i)
        now[0] += 1
    snap = windows.snapshot()["settled"]
    assert snap["1s"]["count"] == 10 and snap["1s"]["tps"] == 10
    assert snap["10s"]["count"] == 100 and snap["10s"]["success_rate"] == 0.9
    assert snap["60s"]["count"] == 120
    low, high = snap["10s"]["success_rate_95ci"]
    assert low < 0.9 < high
    assert 100 <= snap["10s"]["latency_ms"]["p50"] <= 109


def test_metrics_live_on_their_own_registry() -> None:
    first, second = Metrics.create(), Metrics.create()
    first.records.labels("settled", "ok").inc()
    assert (
        second.registry.get_sample_value(
            "paystream_stage_records_total", {"stage": "settled", "outcome": "ok"}
        )
        is None
    )
