"""The bench's baselines without a service: the steady rate leaves out the
start and the stragglers; repeated runs report their median and spread."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.bench import baselines
from devtools.bench.baselines import Arrivals, BaselineResult, Repeated, make_record
from services.settings import Settings


class Message:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value


def test_the_steady_rate_leaves_out_the_slow_start_and_end(monkeypatch: Any) -> None:
    arrivals = Arrivals(Settings(), "t4", 100)
    clock = iter([0.0] * 5 + [10.0 + i * 0.01 for i in range(90)] + [99.0] * 5)
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    for seq in range(100):
        arrivals._count([Message(make_record(b"t", seq, 300)[1])])
    # arrivals 10 to 90 came 0.01 s apart: 100 records/s, whatever the first and last did
    assert arrivals.steady_per_s() == pytest.approx(100.0)  # over all 99 s: about 1/s


def test_no_steady_rate_before_the_last_mark() -> None:
    arrivals = Arrivals(Settings(), "t4", 100)
    arrivals._count([Message(make_record(b"t", seq, 300)[1]) for seq in range(50)])
    assert arrivals.steady_per_s() == 0.0


def _run(rate: float) -> BaselineResult:
    return BaselineResult("raw_4hop", 10, 1.0, rate, {"hop1": {"cpu_percent": rate}}, (), 0, rate)


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
