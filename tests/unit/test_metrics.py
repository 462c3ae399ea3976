"""Statistics and rolling windows."""

from __future__ import annotations

import math

import pytest

from services.metrics.catalogue import Metrics
from services.metrics.stats import percentile, wilson
from services.metrics.windows import RELATIVE_ERROR, Counts, summarize


def test_percentile_interpolates_and_handles_empty() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson(81, 263)  # Wilson (1927) style example: p = 0.308
    assert low == pytest.approx(0.2553, abs=1e-3) and high == pytest.approx(0.3662, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0)


def test_counts_merge_and_read_percentiles_within_the_bucket_error() -> None:
    first, second = Counts(), Counts()
    latencies = [float(ms) for ms in range(1, 1001)]
    for ms in latencies[:500]:
        first.add("ok", ms)
    for ms in latencies[500:]:
        second.add("ok", ms)
    second.add("rejected", None)
    first.merge(second)
    assert (first.ok, first.rejected, first.count) == (1000, 1, 1001)
    for q in (50, 95, 99):
        exact = percentile(latencies, q)
        estimate = first.quantile_ms(q)
        assert estimate is not None
        assert abs(estimate - exact) / exact <= RELATIVE_ERROR + 0.002  # + rank rounding
    assert Counts.from_json(first.to_json()) == first
    assert Counts().quantile_ms(50) is None


def test_summary_reports_tps_latency_and_success_over_three_windows() -> None:
    now = 1_000.0
    seconds = []
    for back in range(1, 13):
        counts = Counts()
        for i in range(10):
            counts.add("ok" if i else "failed", 100.0 + i if i else None)
        seconds.append(("settled", int(now) - back, counts))
    filling = Counts()
    filling.add("ok", 1.0)
    seconds.append(("settled", int(now), filling))  # the current second: left out
    snap = summarize(seconds, now)["settled"]
    assert snap["1s"]["count"] == 10 and snap["1s"]["tps"] == 10
    assert snap["10s"]["count"] == 100 and snap["10s"]["success_rate"] == 0.9
    assert snap["60s"]["count"] == 120
    low, high = snap["10s"]["success_rate_95ci"]
    assert low < 0.9 < high
    assert 100 <= snap["10s"]["latency_ms"]["p50"] <= 109 * (1 + RELATIVE_ERROR)


def test_refusals_are_counted_but_are_not_failures_of_the_engine() -> None:
    counts = Counts()
    counts.add("ok", 5.0)
    counts.add("rejected", None)
    snap = summarize([("settled", 99, counts)], 100.5)["settled"]["1s"]
    assert (snap["count"], snap["rejected"], snap["success_rate"]) == (2, 1, 1.0)


def test_metrics_live_on_their_own_registry() -> None:
    first, second = Metrics.create(), Metrics.create()
    first.records.labels("settled", "ok").inc()
    assert (
        second.registry.get_sample_value(
            "paystream_stage_records_total", {"stage": "settled", "outcome": "ok"}
        )
        is None
    )
