"""``paystream demo`` (``make run``): the whole engine on this machine, end to end."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from devtools.demo.merchant import collect_through_gateway
from devtools.harness.chain import fund_payers, gas_used
from devtools.harness.collect import Outcomes, collect
from devtools.harness.isolated import deploy_once
from devtools.harness.load import LoadGenerator, new_payees
from devtools.harness.process import GatewayProcess, SignerProcess, SinkProcess, WorkerProcess
from devtools.stack.errors import StackError
from devtools.stack.manager import LocalStack
from services.bootstrap import prepare_schema, reconcile_bundle
from services.metrics.stats import percentile, wilson
from services.settings import Settings
from streams.ops.reconcile import Report, reconcile
from streams.ops.topics import create_topics

TOKEN_UNIT = 1_000_000  # 6 decimals


@dataclass(frozen=True)
class DemoPlan:
    payers: int = 20
    payments: int = 1_000
    rate_per_s: float | None = 100.0
    # Then this many as fast as possible: what the engine carries (0: skip).
    burst: int = 1_000
    deposit_each: int = 10_000 * TOKEN_UNIT
    max_amount: int = 100 * TOKEN_UNIT
    payees: int = 50
    timeout_s: float = 180.0
    gateway_payments: int = 20  # through the merchant REST API (0: skip)


def run_demo(settings: Settings, plan: DemoPlan, console: Console) -> dict[str, Any]:
    console.print("[bold]1/8[/] local stack")
    LocalStack(settings).up(report=lambda m: console.print(f"    {m}", highlight=False))
    console.print("[bold]2/8[/] schema, contracts and topics")
    prepare_schema(settings)  # deploying reads the claims of payments in flight
    asyncio.run(deploy_once(settings))
    create_topics(settings)
    payers = [f"demo-payer-{i:04d}" for i in range(plan.payers)]
    log = settings.state_dir / "logs" / "worker-demo.log"
    console.print(f"[bold]3/8[/] worker, ledger sink and merchant gateway (log: {log})")
    logs = settings.state_dir / "logs"
    with (
        SignerProcess(settings, logs / "signer-demo.log"),  # approves batches above a threshold
        WorkerProcess(settings, log) as worker,
        SinkProcess(settings, logs / "sink-demo.log"),
        GatewayProcess(settings, logs / "gateway-demo.log"),
        Progress(console=console) as bar,
    ):
        ops = f"http://{settings.host}:{settings.gateway_port}/ops"
        console.print(f"    ops page: {ops} (token: PAYSTREAM_OPS_TOKEN)", highlight=False)
        task = bar.add_task("4/8 deposits on chain", total=plan.payers)
        asyncio.run(fund_payers(settings, payers, plan.deposit_each, bar_of(bar, task)))
        worker.wait_credited(payers, plan.deposit_each, plan.timeout_s)
        load = LoadGenerator(settings, payers, new_payees(plan.payees), plan.max_amount)
        task = bar.add_task("5/8 publishing requests", total=plan.payments)
        sent = load.publish(plan.rate_per_s, count=plan.payments, progress=bar_of(bar, task))
        task = bar.add_task("6/8 waiting for outcomes", total=plan.payments)
        outcomes = collect(settings, set(sent.ids), plan.timeout_s, bar_of(bar, task))
        merchant = None
        if plan.gateway_payments:
            task = bar.add_task("7/8 a merchant over REST", total=plan.gateway_payments)
            merchant = collect_through_gateway(
                settings, payers, plan.gateway_payments, plan.timeout_s, bar_of(bar, task)
            )
        capacity = _capacity(settings, plan, load, bar)
        done = set(outcomes.settled) | set(outcomes.failed) | (capacity.ids if capacity else set())
        _wait_recorded(settings, done, plan.timeout_s)
    summary = _summary(settings, plan, outcomes, sent.started_s)
    summary["capacity"] = capacity.summary() if capacity else None
    summary["gateway"] = merchant
    report = asyncio.run(_reconcile(settings))
    summary["reconcile_mismatches"] = len(report.mismatches)
    summary["ledger_total"] = report.counts.get("ledger total")
    _print(console, summary)
    return summary


@dataclass(frozen=True)
class Capacity:
    """The burst after the paced requests: what the engine carries flat out."""

    requested: int
    settled: int
    failed: int
    per_s: float  # outcomes per second, first request to last outcome
    ids: set[str]

    def summary(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "settled": self.settled,
            "failed": self.failed,
            "per_s": self.per_s,
        }


def _capacity(
    settings: Settings, plan: DemoPlan, load: LoadGenerator, bar: Progress
) -> Capacity | None:
    if not plan.burst:
        return None
    sent = load.publish(None, count=plan.burst)
    task = bar.add_task(f"8/8 capacity: {plan.burst} as fast as possible", total=plan.burst)
    outcomes = collect(settings, set(sent.ids), plan.timeout_s, bar_of(bar, task))
    per_s = _carried_per_s(outcomes, sent.started_s)
    ids = set(outcomes.settled) | set(outcomes.failed)
    return Capacity(plan.burst, len(outcomes.settled), len(outcomes.failed), per_s, ids)


def _carried_per_s(outcomes: Outcomes, started_s: float) -> float:
    """Outcomes per second, from the first request to the last outcome."""
    done = len(outcomes.settled) + len(outcomes.failed)
    return done / max(outcomes.last_s - started_s, 1e-9)


def bar_of(bar: Progress, task: TaskID) -> Callable[[int], None]:
    """A progress callback that advances one task of the progress display."""
    return lambda n: bar.advance(task, n)


async def _reconcile(settings: Settings) -> Report:
    async with reconcile_bundle(settings) as bundle:
        return await reconcile(settings, bundle)


def _wait_recorded(settings: Settings, ids: set[str], timeout_s: float) -> None:
    """Wait until the ledger sink has written every outcome to PostgreSQL."""
    deadline = time.monotonic() + timeout_s
    password = settings.pg_password.get_secret_value()
    with psycopg.connect(settings.pg_conninfo, password=password, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM payments WHERE payment_id::text = ANY(%s)", (list(ids),)
            ).fetchone()
            if row is not None and int(row[0]) >= len(ids):
                return
            if time.monotonic() > deadline:
                raise StackError("the ledger sink did not record every outcome in time")
            time.sleep(0.5)


def _summary(
    settings: Settings, plan: DemoPlan, outcomes: Outcomes, started_s: float
) -> dict[str, Any]:
    n_settled, n_failed = len(outcomes.settled), len(outcomes.failed)
    total = n_settled + n_failed
    latencies = [float(str(r["latency_ms"])) for r in outcomes.settled.values()]
    low, high = wilson(n_settled, total)
    hashes = {str(r["tx_hash"]) for r in outcomes.settled.values()}
    txs, gas = asyncio.run(gas_used(settings, hashes))
    return {
        "requested": plan.payments,
        "offered_per_s": plan.rate_per_s,
        "settled": n_settled,
        "failed": n_failed,
        "failed_by_code": dict(Counter(str(r["code"]) for r in outcomes.failed.values())),
        "missing": plan.payments - total,
        "duplicate_outcomes": outcomes.duplicates,
        "redelivered_records": outcomes.redelivered,
        "tps": _carried_per_s(outcomes, started_s),
        "latency_ms": {q: percentile(latencies, q) for q in (50, 95, 99)},
        "success_rate": n_settled / total if total else 0.0,
        "success_rate_95ci": [low, high],
        "onchain_transactions": txs,
        "gas_per_payment": gas // n_settled if n_settled else 0,
    }


def _print(console: Console, s: dict[str, Any]) -> None:
    table = Table("measure", "value", title="paystream demo")
    table.add_row("requested", str(s["requested"]))
    table.add_row("settled", str(s["settled"]))
    table.add_row("failed", f"{s['failed']} {s['failed_by_code'] or ''}")
    table.add_row("missing outcomes", str(s["missing"]))
    offered = f"offered {s['offered_per_s']:.0f}/s" if s["offered_per_s"] else "as fast as possible"
    table.add_row("throughput", f"{s['tps']:.1f} payments/s ({offered}; request to last outcome)")
    lat = s["latency_ms"]
    table.add_row(
        "latency requested→settled",
        f"p50 {lat[50]:.0f} ms, p95 {lat[95]:.0f} ms, p99 {lat[99]:.0f} ms",
    )
    low, high = s["success_rate_95ci"]
    table.add_row("success rate", f"{s['success_rate']:.2%} (95 % CI {low:.2%} to {high:.2%})")
    capacity = s["capacity"]
    if capacity is not None:
        table.add_row(
            "capacity",
            f"{capacity['per_s']:.1f} payments/s ({capacity['requested']} requests as fast "
            f"as possible: {capacity['settled']} settled, {capacity['failed']} failed)",
        )
    merchant = s["gateway"]
    if merchant is not None:
        table.add_row(
            "merchant gateway (REST)",
            f"{merchant['created']} payments: {merchant['by_status']}, "
            f"{merchant['not_ended']} not ended (API key in {merchant['key_file']}, docs/api.md)",
        )
    table.add_row("on-chain transactions", str(s["onchain_transactions"]))
    table.add_row("gas per settled payment", f"{s['gas_per_payment']:,}")
    table.add_row(
        "reconcile (PostgreSQL, Faust, topic, chain)",
        f"{s['reconcile_mismatches']} mismatches, ledger total {s['ledger_total']}",
    )
    console.print(table)
