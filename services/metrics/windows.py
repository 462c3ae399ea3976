"""Rolling windows per stage over the last 1 s, 10 s and 60 s: throughput,
latency percentiles and success rate with its Wilson 95 % interval.

Kept in the worker's memory (per-second buckets, a bounded sample of latencies
per bucket): fast, rebuildable state that restarts empty. Prometheus
(``services/metrics/catalogue.py``) aggregates across workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.metrics.stats import percentile, wilson

WINDOWS_S = (1, 10, 60)
SAMPLES_PER_BUCKET = 512


@dataclass
class _Bucket:
    ok: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class RollingWindows:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._stages: dict[str, dict[int, _Bucket]] = {}

    def record(self, stage: str, ok: bool, latency_ms: float | None = None) -> None:
        now = int(self.clock())
        buckets = self._stages.setdefault(stage, {})
        bucket = buckets.setdefault(now, _Bucket())
        if ok:
            bucket.ok += 1
        else:
            bucket.failed += 1
        if latency_ms is not None and len(bucket.latencies_ms) < SAMPLES_PER_BUCKET:
            bucket.latencies_ms.append(latency_ms)
        for old in [s for s in buckets if s <= now - max(WINDOWS_S)]:
            del buckets[old]

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{stage: {"1s"|"10s"|"60s": {count, tps, ok, failed, success_rate,
        success_rate_95ci, latency_ms: {p50, p95, p99}}}}; the current second is
        excluded (it is still filling)."""
        now = int(self.clock())
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for stage, buckets in self._stages.items():
            out[stage] = {}
            for window in WINDOWS_S:
                chosen = [b for s, b in buckets.items() if now - window <= s < now]
                ok = sum(b.ok for b in chosen)
                failed = sum(b.failed for b in chosen)
                latencies = [x for b in chosen for x in b.latencies_ms]
                low, high = wilson(ok, ok + failed)
                out[stage][f"{window}s"] = {
                    "count": ok + failed,
                    "tps": (ok + failed) / window,
                    "ok": ok,
                    "failed": failed,
                    "success_rate": ok / (ok + failed) if ok + failed else None,
                    "success_rate_95ci": [low, high],
                    "latency_ms": {
                        f"p{q}": (percentile(latencies, q) if latencies else None)
                        for q in (50, 95, 99)
                    },
                }
        return out
