"""Every Prometheus metric of paystream, on an injected registry (no globals).
Names follow Prometheus conventions: base units, ``_total`` for counters, no
payment ids or addresses as labels."""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60)
FRAUD_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    records: Counter  # by stage and outcome (ok, failed by the engine, rejected by the rules)
    latency: Histogram  # seconds from request to the stage's output
    fraud_check: Histogram  # seconds the fraud rules took per request
    dead_letters: Counter
    alerts: Counter
    table_entries: Gauge  # by table: entries this worker holds in memory
    chain_head: Gauge  # the chain's head block, as the leader's listener saw it
    chain_head_age: Gauge  # seconds since that head last advanced (NaN off the leader)
    listener_block: Gauge  # the last block the listener recorded
    settlement_halted: Gauge  # 1 while a reorg deeper than finality halts settlement
    oldest_hold: Gauge  # by status: seconds since the oldest held payment was requested

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
            fraud_check=Histogram(
                "paystream_fraud_check_seconds",
                "Time the fraud rules took to decide a request",
                buckets=FRAUD_BUCKETS_S,
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
            chain_head=Gauge(
                "paystream_chain_head_block",
                "The chain's head block, as the chain listener saw it",
                registry=registry,
            ),
            chain_head_age=Gauge(
                "paystream_chain_head_age_seconds",
                "Seconds since the chain's head last advanced (NaN unless this worker leads)",
                registry=registry,
            ),
            listener_block=Gauge(
                "paystream_chain_listener_block",
                "The last block the chain listener recorded (its cursor)",
                registry=registry,
            ),
            settlement_halted=Gauge(
                "paystream_settlement_halted",
                "1 while settlement is halted by a reorg deeper than finality",
                registry=registry,
            ),
            oldest_hold=Gauge(
                "paystream_oldest_hold_seconds",
                "Seconds since the oldest payment held in this status was requested "
                "(this worker's partitions)",
                ["status"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class SinkMetrics:
    """The ledger sink's, served on ``sink_metrics_port`` with the consumer lag."""

    registry: CollectorRegistry
    records: Counter  # by outcome: written, replayed (already booked), dead
    batches: Histogram  # seconds to write one batch
    lag_records: Gauge  # by group and topic: records not yet read
    lag_seconds: Gauge  # by group and topic: age of the oldest record not yet read
    lag_errors: Counter  # lag measurements that failed (Kafka did not answer)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> SinkMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            records=Counter(
                "paystream_sink_records_total",
                "Records the ledger sink read, by what became of them",
                ["outcome"],
                registry=registry,
            ),
            batches=Histogram(
                "paystream_sink_batch_seconds",
                "Time to write one batch to PostgreSQL",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            lag_records=Gauge(
                "paystream_consumer_lag_records",
                "Records of a topic the consumer group has not read (committed to end offset)",
                ["group", "topic"],
                registry=registry,
            ),
            lag_seconds=Gauge(
                "paystream_consumer_lag_seconds",
                "How long ago the oldest record the consumer group has not read was written",
                ["group", "topic"],
                registry=registry,
            ),
            lag_errors=Counter(
                "paystream_consumer_lag_errors_total",
                "Consumer lag measurements that failed",
                registry=registry,
            ),
        )


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode


@dataclass(frozen=True)
class GatewayMetrics:
    """The merchant gateway's, served on its own ``/metrics``."""

    registry: CollectorRegistry
    requests: Counter  # by method, route (its template, never an id) and status code
    duration: Histogram  # seconds to answer, by method and route
    admission: Counter  # by decision: admitted, engine_busy, rate_limited, unlimited

    def exposition(self) -> bytes:
        """The text format of the gateway's metrics: of every worker process
        when the gateway runs several (``PROMETHEUS_MULTIPROC_DIR`` is set:
        each process writes its values there), else of this registry."""
        if MULTIPROC_ENV not in os.environ:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(merged)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> GatewayMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "paystream_gateway_requests_total",
                "HTTP requests the gateway answered",
                ["method", "route", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "paystream_gateway_request_duration_seconds",
                "Time the gateway took to answer a request",
                ["method", "route"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            admission=Counter(
                "paystream_gateway_admission_total",
                "Admission decisions: rate limits per key, and payments refused while the "
                "engine lags",
                ["decision"],
                registry=registry,
            ),
        )
