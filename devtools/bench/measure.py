"""Numbers of one load phase, from the traces the collector gathered."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from devtools.harness.collect import Trace
from services.metrics.stats import percentile, wilson

LATENCY_STAGES = ("scored", "submitted", "settled")
QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9}


def _ms(values: Sequence[float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        value = percentile(values, q)
        out[name] = None if math.isnan(value) else round(value, 1)
    return out


@dataclass(frozen=True)
class Phase:
    """What one phase of load did (``offered_per_s`` None: as fast as possible)."""

    name: str
    offered_per_s: float | None
    requested: int
    settled: int
    failed: int
    missing: int
    payments_per_s: float  # outcomes / (last outcome - first request)
    stage_per_s: dict[str, float]
    latency_ms: dict[str, dict[str, float | None]]
    success_rate: float
    success_rate_95ci: tuple[float, float]
    failed_by_code: dict[str, int]
    tx_hashes: frozenset[str] = field(default_factory=frozenset, repr=False)
    samples_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # (seconds since the phase started, stage) of every stage record, for the plots
    timeline: list[tuple[float, str]] = field(default_factory=list, repr=False)

    def sustained(self, p99_target_ms: float) -> bool:
        """Every payment finished, the pipeline kept up with the offered rate, and
        p99 requested->settled is within the target."""
        p99 = self.latency_ms["settled"]["p99"]
        kept_up = self.offered_per_s is None or self.payments_per_s >= 0.9 * self.offered_per_s
        return self.missing == 0 and kept_up and p99 is not None and p99 <= p99_target_ms

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "offered_per_s": self.offered_per_s,
            "requested": self.requested,
            "settled": self.settled,
            "failed": self.failed,
            "missing": self.missing,
            "payments_per_s": round(self.payments_per_s, 1),
            "stage_per_s": {k: round(v, 1) for k, v in self.stage_per_s.items()},
            "latency_ms": self.latency_ms,
            "success_rate": self.success_rate,
            "success_rate_95ci": list(self.success_rate_95ci),
            "failed_by_code": self.failed_by_code,
        }


def measure(
    name: str, offered_per_s: float | None, ids: Sequence[str], traces: dict[str, Trace]
) -> Phase:
    """The latencies are those of the payments seen at every stage (the
    collector reads the stage topics side by side, so at the end of a phase
    one topic may be read further than another): over one set of payments,
    each stage's quantiles are at most the next stage's."""
    mine = [traces[i] for i in ids if i in traces]
    start = min((t.requested_s for t in mine), default=0.0)
    latencies: dict[str, list[float]] = {s: [] for s in LATENCY_STAGES}
    counts: Counter[str] = Counter()
    last: dict[str, float] = {}
    timeline: list[tuple[float, str]] = []
    for trace in mine:
        complete = all(stage in trace.stages for stage in LATENCY_STAGES)
        for stage, at in trace.stages.items():
            if stage in latencies and complete:
                latencies[stage].append(max(0.0, (at - trace.requested_s) * 1000))
            counts[stage] += 1
            last[stage] = max(last.get(stage, at), at)
            timeline.append((at - start, stage))
        timeline.append((trace.requested_s - start, "requested"))
    settled = [t for t in mine if "settled" in t.stages]
    failed = [t for t in mine if "failed" in t.stages and "settled" not in t.stages]
    finished = len(settled) + len(failed)
    end = max((last.get(s, 0.0) for s in ("settled", "failed")), default=start)
    low, high = wilson(len(settled), finished)
    return Phase(
        name=name,
        offered_per_s=offered_per_s,
        requested=len(ids),
        settled=len(settled),
        failed=len(failed),
        missing=len(ids) - finished,
        payments_per_s=finished / (end - start) if end > start else 0.0,
        stage_per_s={
            s: counts[s] / (last[s] - start) if last.get(s, start) > start else 0.0
            for s in LATENCY_STAGES
        },
        latency_ms={s: _ms(v) for s, v in latencies.items()},
        success_rate=len(settled) / finished if finished else 0.0,
        success_rate_95ci=(low, high),
        failed_by_code=dict(Counter(str(t.code) for t in failed)),
        tx_hashes=frozenset(t.tx_hash for t in settled if t.tx_hash),
        samples_ms=latencies,
        timeline=timeline,
    )
