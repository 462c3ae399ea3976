"""The Faust app: tables, the four agents, the batch flusher, the sweeper of
unsent batches, and the chain listener (on the leader only).

``create_app`` builds everything from Settings; nothing connects at import time.
The worker's adapters come from ``connect`` (``services.bootstrap.worker_ports``)
when the worker starts: the chain client needs the deployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.cursor import Cursor
from schemas.topics import CHAIN_EVENTS, CHAIN_SUBMITTED, FRAUD_SCORED, PAYMENTS_REQUESTED
from services.ports import ChainClient, CursorStore, WorkerPorts
from services.settings import Settings
from streams.agents.shell import run
from streams.listener import ChainListener
from streams.runtime import Runtime
from streams.stages.fraud import FraudDeps, handle_request
from streams.stages.reconcile import ReconcileDeps, handle_chain_event
from streams.stages.settlement.batching import (
    OpenBatch,
    SettlementDeps,
    Submissions,
    handle_scored,
    member_batches,
    pending_batches,
    take_due_batches,
)
from streams.stages.settlement.submit import settle
from streams.stages.submitted import SubmittedDeps, handle_submitted
from streams.state import Balance, Status
from streams.tables import declare_tables

log = logging.getLogger("paystream.streams")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Connections:
    """What a worker connects to once it has started (the chain needs the deployment)."""

    chain: ChainClient
    cursors: CursorStore
    listener: ChainListener
    cursor: Cursor | None  # the listener's, kept here while this worker leads; saved per block
    polled_at = 0.0  # monotonic time of the last poll

    def __init__(self) -> None:
        self.ready = asyncio.Event()


def faust_options(settings: Settings) -> dict[str, Any]:
    """The Faust settings that matter for throughput, shared with the no-op Faust
    baseline of the benchmark so that it measures the same configuration.

    One consumer feeds every agent of a worker, and it blocks while any agent's
    stream buffer is full: a small buffer makes a backlog on one topic stall
    the others (see docs/performance.md).
    """
    return {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "topic_partitions": settings.kafka_partitions,
        "topic_replication_factor": 1,
        "producer_acks": -1,
        "producer_linger_ms": settings.faust_producer_linger_ms,
        "stream_buffer_maxsize": settings.faust_stream_buffer_maxsize,
        "broker_commit_every": settings.faust_commit_every,
        "broker_commit_interval": 1.0,
    }


def create_app(settings: Settings, connect: Callable[[], Awaitable[WorkerPorts]]) -> faust.App:
    app = faust.App(
        settings.app_id,
        web_port=settings.worker_web_port,
        web_host=settings.host,
        web_bind=settings.host,
        datadir=str(settings.state_dir / "faust"),
        **faust_options(settings),
    )
    tables = declare_tables(app, settings.kafka_partitions)
    runtime = Runtime.build(app, settings, utcnow)
    topics = runtime.topics
    live = _Connections()

    fraud = FraudDeps(settings, tables.payments, tables.balances, tables.velocity, utcnow)
    settlement = SettlementDeps(settings, tables.payments, tables.sequences, utcnow)
    submitted = SubmittedDeps(tables.payments, tables.balances, utcnow)
    reconcile = ReconcileDeps(tables.payments, tables.balances, tables.sequences, utcnow)
    handled = Submissions(keep_s=10 * settings.batch_timeout_s)
    tasks: set[asyncio.Task[None]] = set()

    def spawn(batch: OpenBatch) -> None:
        task = asyncio.ensure_future(submit(batch))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    slots = asyncio.Semaphore(settings.settle_concurrency)

    @app.task
    async def connect_ports() -> None:
        ports = await connect()
        live.chain = ports.chain
        live.cursors = ports.cursors
        live.listener = ChainListener(ports.chain, settings, settings.listener_start_block)
        live.cursor = None
        live.ready.set()

    @app.agent(topics[PAYMENTS_REQUESTED], name="fraud")
    async def fraud_agent(stream: Any) -> None:
        await run(
            stream, lambda raw, key, _p, _o: handle_request(raw, key, fraud), runtime, "fraud"
        )

    @app.agent(topics[FRAUD_SCORED], name="settlement")
    async def settlement_agent(stream: Any) -> None:
        await run(
            stream,
            lambda raw, _k, p, o: handle_scored(raw, p, o, settlement),
            runtime,
            "settlement",
        )

    @app.agent(topics[CHAIN_SUBMITTED], name="submitted")
    async def submitted_agent(stream: Any) -> None:
        await run(
            stream, lambda raw, _k, _p, _o: handle_submitted(raw, submitted), runtime, "submitted"
        )

    @app.agent(topics[CHAIN_EVENTS], name="reconciler")
    async def reconciler_agent(stream: Any) -> None:
        await run(
            stream,
            lambda raw, key, _p, _o: handle_chain_event(raw, key, reconcile),
            runtime,
            "reconciler",
        )

    async def submit(batch: OpenBatch) -> None:
        ids = member_batches(batch)
        for batch_id in ids:
            handled.take(batch_id, time.monotonic())
        settlement.sending += 1
        try:
            async with slots:
                await live.ready.wait()
                await app.producer.flush()  # the batch's table entries are durable first
                for emit in await settle(batch, live.chain, settings, utcnow):
                    await runtime.send(emit)
        except Exception:
            for batch_id in ids:
                handled.failed(batch_id)
            log.exception("batch %s: submission failed; the sweeper will retry", batch.batch_id)
        finally:
            settlement.sending -= 1

    @app.timer(interval=0.05)
    async def flush_batches() -> None:
        for batch in take_due_batches(settlement):
            spawn(batch)

    @app.timer(interval=5.0)
    async def sweep_unsent_batches() -> None:
        older = utcnow() - timedelta(seconds=settings.batch_timeout_s)
        for batch in pending_batches(
            tables.payments.where("status", Status.SCORED), older, handled
        ):
            log.warning("re-sending batch %s (%d payments)", batch.batch_id, len(batch.members))
            spawn(batch)

    @app.timer(interval=settings.listener_poll_ms / 1000, on_leader=True)
    async def listen() -> None:
        if not live.ready.is_set():
            return
        if time.monotonic() - live.polled_at > 10 * settings.listener_poll_ms / 1000:
            live.cursor = await live.cursors.load()  # another leader may have moved it on
        live.polled_at = time.monotonic()
        poll = await live.listener.poll(live.cursor)
        if poll.reorged_from is not None:
            log.warning("reorg: blocks from %s were replaced", poll.reorged_from)
        for emit in poll.emits:
            await runtime.send(emit)
        if poll.cursor is not None and poll.cursor is not live.cursor:
            await live.cursors.save(poll.cursor)
            live.cursor = poll.cursor

    @app.page("/balances/{account}/")
    class BalanceView(View):
        async def get(self, request: Request, account: str) -> Response:
            balance = tables.balances.get(account)
            body = (balance or Balance()).summary()
            return self.json({"account": account, **body})

    @app.page("/windows/")
    class WindowsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(runtime.windows.snapshot())

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                generate_latest(runtime.metrics.registry),
                content_type=CONTENT_TYPE_LATEST.split(";")[0],
            )

    del fraud_agent, settlement_agent, submitted_agent, reconciler_agent
    del BalanceView, WindowsView, MetricsView
    return app
