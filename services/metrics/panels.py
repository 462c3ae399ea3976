"""The panels ops look at, once: the ops page (``paystream/gateway/ops.py``)
queries them from Prometheus, and the Grafana dashboard
(``deploy/grafana/paystream.json``, written by ``paystream ops grafana``) is
made from them. Every expression returns data while the engine runs (a
counter no process has touched yet reads as 0 through ``or vector(0)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["s", "records", "ops", "percentunit", "none"]


@dataclass(frozen=True)
class Panel:
    key: str  # the ops page's name for it
    title: str
    expr: str
    unit: Unit
    legend: str = ""  # Grafana's legend format, e.g. "{{group}}"
    over_time: bool = True  # a time series (else a single number)


PANELS: tuple[Panel, ...] = (
    Panel(
        "lag_seconds",
        "Consumer lag per group (seconds)",
        "max by (group) (paystream_consumer_lag_seconds)",
        "s",
        "{{group}}",
    ),
    Panel(
        "lag_records",
        "Consumer lag per group (records)",
        "sum by (group) (paystream_consumer_lag_records)",
        "records",
        "{{group}}",
    ),
    Panel(
        "throughput",
        "Throughput per stage (records/s)",
        "sum by (stage) (rate(paystream_stage_records_total[1m]))",
        "ops",
        "{{stage}}",
    ),
    Panel(
        "latency_p50",
        "Latency from request, p50 per stage",
        "histogram_quantile(0.5, sum by (stage, le) "
        "(rate(paystream_stage_latency_seconds_bucket[1m])))",
        "s",
        "{{stage}}",
    ),
    Panel(
        "latency_p99",
        "Latency from request, p99 per stage",
        "histogram_quantile(0.99, sum by (stage, le) "
        "(rate(paystream_stage_latency_seconds_bucket[1m])))",
        "s",
        "{{stage}}",
    ),
    Panel(
        "settlements_5m",
        "Settled + failed (5 min)",
        "paystream:settlements:increase5m",
        "none",
        over_time=False,
    ),
    Panel(
        "settled_ok_5m",
        "Settled (5 min)",
        "paystream:settlements_ok:increase5m",
        "none",
        over_time=False,
    ),
    Panel(
        "success_rate",
        "Success rate (5 min)",
        "paystream:success_rate:ratio5m",
        "percentunit",
        over_time=False,
    ),
    Panel(
        "success_rate_lower",
        "Success rate, lower 95 % Wilson bound (5 min)",
        "paystream:success_rate_wilson_lower:ratio5m",
        "percentunit",
        over_time=False,
    ),
    Panel(
        "dead_letters_5m",
        "Dead letters (5 min)",
        "sum(increase(paystream_dead_letters_total[5m])) or vector(0)",
        "none",
        over_time=False,
    ),
    Panel(
        "fraud_check_p99",
        "Fraud check p99",
        "histogram_quantile(0.99, sum by (le) (rate(paystream_fraud_check_seconds_bucket[5m])))",
        "s",
        over_time=False,
    ),
    Panel(
        "chain_head",
        "Chain head block",
        "max(paystream_chain_head_block)",
        "none",
        over_time=False,
    ),
    Panel(
        "chain_listener",
        "Listener block (read up to)",
        "max(paystream_chain_listener_block)",
        "none",
        over_time=False,
    ),
    Panel(
        "chain_head_age",
        "Seconds since the chain head moved",
        "max(paystream_chain_head_age_seconds)",
        "s",
        over_time=False,
    ),
    Panel(
        "settlement_halted",
        "Settlement halted (1 = halted)",
        "max(paystream_settlement_halted) or vector(0)",
        "none",
        over_time=False,
    ),
    Panel(
        "oldest_hold",
        "Oldest hold per status (seconds)",
        "max by (status) (paystream_oldest_hold_seconds)",
        "s",
        "{{status}}",
    ),
    Panel(
        "gateway_requests",
        "Gateway requests/s per status",
        "sum by (status) (rate(paystream_gateway_requests_total[1m])) or vector(0)",
        "ops",
        "{{status}}",
    ),
    Panel(
        "alerts_firing",
        "Alerts firing",
        'count(ALERTS{alertstate="firing"}) or vector(0)',
        "none",
        over_time=False,
    ),
)
