"""Rolling windows per stage over the last 1 s, 10 s and 60 s: throughput,
latency percentiles and success rate with its Wilson 95 % interval, made from
per-second ``Counts``.

A ``Counts`` is mergeable: two of them (two partitions, two workers, two
flushes of one second) add up to the counts of both, latencies included,
because latencies are kept as a log-bucketed histogram, not as samples. A
bucket spans a factor ``GAMMA`` of latency, so a percentile read from it is
within ``RELATIVE_ERROR`` (1 %) of the exact one. The stream worker keeps one
``Counts`` per stage, partition and second in a Faust windowed table
(``streams/windows.py``); this module only counts and summarises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from services.metrics.stats import wilson

WINDOWS_S = (1, 10, 60)
GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
MIN_LATENCY_MS = 0.001  # a latency at or under 1 µs counts as 1 µs (clock skew: as 1 µs too)
_LOG_GAMMA = math.log(GAMMA)

Result = Literal["ok", "failed", "rejected"]


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of a latency: ``GAMMA**(i-1) < ms <= GAMMA**i``."""
    return math.ceil(math.log(max(latency_ms, MIN_LATENCY_MS)) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The latency a bucket stands for: the point within ``RELATIVE_ERROR`` of
    every latency in it."""
    return 2 * GAMMA**index / (GAMMA + 1)


@dataclass
class Counts:
    """What one stage put out in one second (or a sum of such)."""

    ok: int = 0
    failed: int = 0  # accepted by the engine and not settled
    rejected: int = 0  # refused by the rules (no funds, limits, fraud)
    latency: dict[int, int] = field(default_factory=dict)  # bucket -> payments

    def add(self, outcome: Result, latency_ms: float | None) -> None:
        if outcome == "ok":
            self.ok += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.rejected += 1
        if latency_ms is not None:
            index = bucket_of(latency_ms)
            self.latency[index] = self.latency.get(index, 0) + 1

    def merge(self, other: Counts) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.rejected += other.rejected
        for index, n in other.latency.items():
            self.latency[index] = self.latency.get(index, 0) + n

    @property
    def count(self) -> int:
        return self.ok + self.failed + self.rejected

    def quantile_ms(self, q: float) -> float | None:
        """The q-th percentile (0..100) of the latencies; None without any."""
        total = sum(self.latency.values())
        if total == 0:
            return None
        rank = max(1, math.ceil(total * q / 100))
        seen = 0
        for index in sorted(self.latency):
            seen += self.latency[index]
            if seen >= rank:
                return bucket_value(index)
        raise AssertionError("unreachable: rank <= total")

    def to_json(self) -> bytes:
        body = {"ok": self.ok, "failed": self.failed, "rejected": self.rejected}
        return json.dumps({**body, "latency": self.latency}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Counts:
        data = json.loads(raw)
        latency = {int(k): int(v) for k, v in data.get("latency", {}).items()}
        return cls(int(data["ok"]), int(data["failed"]), int(data["rejected"]), latency)


def summarize(seconds: Iterable[tuple[str, int, Counts]], now: float) -> dict[str, Any]:
    """{stage: {"1s"|"10s"|"60s": {count, tps, ok, failed, rejected,
    success_rate, success_rate_95ci, latency_ms: {p50, p95, p99}}}} from
    (stage, second, counts) triples, any number per stage and second (they
    are merged). The current second is left out: it is still filling. The
    success rate is settled over settled and failed: a refused request is not
    a failure of the engine."""
    current = int(now)
    by_stage: dict[str, dict[int, Counts]] = {}
    for stage, second, counts in seconds:
        if current - max(WINDOWS_S) <= second < current:
            by_stage.setdefault(stage, {}).setdefault(second, Counts()).merge(counts)
    return {
        stage: {f"{w}s": _window(per_second, current, w) for w in WINDOWS_S}
        for stage, per_second in sorted(by_stage.items())
    }


def _window(per_second: Mapping[int, Counts], current: int, window: int) -> dict[str, Any]:
    total = Counts()
    for second, counts in per_second.items():
        if current - window <= second:
            total.merge(counts)
    decided = total.ok + total.failed
    low, high = wilson(total.ok, decided)
    return {
        "count": total.count,
        "tps": total.count / window,
        "ok": total.ok,
        "failed": total.failed,
        "rejected": total.rejected,
        "success_rate": total.ok / decided if decided else None,
        "success_rate_95ci": [low, high],
        "latency_ms": {f"p{q}": total.quantile_ms(q) for q in (50, 95, 99)},
    }
