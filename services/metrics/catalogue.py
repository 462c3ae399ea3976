"""Every Prometheus metric of paystream, on an injected registry (no globals).
Names follow Prometheus conventions: base units, ``_total`` for counters, no
payment ids or addresses as labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    records: Counter  # by stage and outcome
    latency: Histogram  # seconds from request to the stage's output
    dead_letters: Counter
    alerts: Counter
    table_entries: Gauge  # by table: entries this worker holds in memory

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            records=Counter(
                "paystream_stage_records_total",
                "Records a stage produced",
                ["stage", "outcome"],
                registry=registry,
            ),
            latency=Histogram(
                "paystream_stage_latency_seconds",
                "Time from the request to the stage's output",
                ["stage"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            dead_letters=Counter(
                "paystream_dead_letters_total",
                "Records sent to the DLQ",
                ["stage"],
                registry=registry,
            ),
            alerts=Counter(
                "paystream_reconciliation_alerts_total",
                "Reconciliation alerts",
                ["kind"],
                registry=registry,
            ),
            table_entries=Gauge(
                "paystream_table_entries",
                "Entries of a Faust table this worker holds (active and standby partitions)",
                ["table"],
                registry=registry,
            ),
        )
