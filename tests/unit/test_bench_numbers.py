"""The bench's numbers without a service: repeated baselines report their
median and spread; stage latencies are over the same payments."""

from __future__ import annotations

from typing import Any

from devtools.bench import baselines
from devtools.bench.baselines import BaselineResult, Repeated
from devtools.bench.measure import measure
from devtools.harness.collect import Trace
from services.settings import Settings


def _run(rate: float) -> BaselineResult:
    return BaselineResult("raw_4hop", 10, 1.0, rate, {"hop1": {"cpu_percent": rate}})


def test_repeated_runs_give_their_median_and_spread() -> None:
    runs = Repeated("raw_4hop", (_run(90.0), _run(30.0), _run(50.0)))
    assert runs.median_per_s == 50.0
    assert runs.spread_per_s == (30.0, 90.0)
    assert runs.processes == {"hop1": {"cpu_percent": 50.0}}  # the median run's
    assert runs.summary()["runs_per_s"] == [90.0, 30.0, 50.0]


def test_repeated_runs_the_baseline_that_many_times() -> None:
    calls: list[int] = []

    def fake(settings: Settings, records: int, progress: Any) -> BaselineResult:
        calls.append(records)
        return _run(float(len(calls)))

    result = baselines.repeated(fake, Settings(), 7, 3)
    assert calls == [7, 7, 7] and result.median_per_s == 2.0


def test_stage_latencies_are_over_the_payments_seen_at_every_stage() -> None:
    traces = {
        "a": Trace(0.0, {"scored": 0.1, "submitted": 1.0, "settled": 1.2}),
        # its chain.submitted record was not read yet: a slow scoring left out
        "b": Trace(0.0, {"scored": 5.0, "settled": 6.0}),
    }
    phase = measure("final", 10.0, ["a", "b"], traces)
    assert phase.latency_ms["scored"]["p99"] == 100.0
    assert phase.latency_ms["submitted"]["p99"] == 1000.0
    assert phase.stage_per_s["scored"] == 2 / 5.0  # every record still counts
    assert phase.settled == 2
