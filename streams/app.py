"""The Faust app of a worker, wired from its parts; nothing connects at import
time, and nothing here decides anything.

- ``streams/agents/``: one agent per consumed topic, each a shell over a stage
  (``review.decisions`` included: approvals, denials and expiries of holds);
- ``streams/scheduler.py``: the batch flusher, the sweeper of unsent batches (of
  the ``fraud.scored`` partitions this worker actively owns), the submission of
  batches to the chain, and dropping the batches of revoked partitions;
- ``streams/listening.py``: the chain listener's timer (on the leader only);
- ``streams/reviews.py``: the expiry of holds for review nobody decided on;
- ``streams/web.py``: the balance, windows and metrics views;
- ``streams/windows.py``: the rolling windows' table and the timer that
  writes them;
- ``streams/watchdog.py``: stops the worker when a partition it was given is
  never fetched (exit 72, for a restart);
- the tables (``streams/tables.py``) in the worker's store
  (``streams/preload.py``), their indexes rebuilt in the background after a
  rebalance (``rebuild_indexes``);
- ``streams/connection.py``: the worker's ports, from ``connect``
  (``services.bootstrap.worker_ports``) once the worker has started: the chain
  client needs the deployment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.topics import FRAUD_SCORED, REVIEW_DECISIONS, WORKER_CONSUMES
from services.ports import WorkerPorts
from services.settings import Settings
from streams import (
    commits,
    connection,
    listening,
    reviews,
    scheduler,
    transport,
    watchdog,
    web,
    windows,
    writes,
)
from streams import merchants as streams_merchants
from streams.agents import (
    chain_events,
    chain_submitted,
    fraud_scored,
    payments_requested,
    review_decisions,
)
from streams.connection import Connection
from streams.deposits import DepositRecall
from streams.indexes import WATCHED_STATUSES
from streams.listening import Listening
from streams.merchants import MerchantDirectory
from streams.retention import Retention
from streams.runtime import Runtime
from streams.scheduler import Scheduler
from streams.stages.fraud import FraudDeps
from streams.stages.review import ReviewDeps
from streams.stages.settled import ReconcileDeps
from streams.stages.settlement.batching import SettlementDeps
from streams.stages.submitted import SubmittedDeps
from streams.state import PaymentState
from streams.tables import ModelTable, Tables, declare_tables
from streams.transport import FetchTuning

log = logging.getLogger("paystream.streams")


def utcnow() -> datetime:
    return datetime.now(UTC)


def faust_options(settings: Settings) -> dict[str, Any]:
    """The Faust settings that matter for throughput, shared with the no-op Faust
    baseline of the benchmark so that it measures the same configuration.

    One consumer feeds every agent of a worker, and it blocks while any agent's
    stream buffer is full: a small buffer makes a backlog on one topic stall
    the others (see docs/performance.md).
    """
    return {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "paystream://",  # streams/preload.py
        "topic_partitions": settings.kafka_partitions,
        "topic_replication_factor": 1,
        "producer_acks": -1,
        "producer_linger_ms": settings.faust_producer_linger_ms,
        "stream_buffer_maxsize": settings.faust_stream_buffer_maxsize,
        "broker_commit_every": settings.faust_commit_every,
        "broker_commit_interval": 1.0,
        "producer_max_batch_size": settings.faust_producer_max_batch_size,
    }


def faust_app(settings: Settings, app_id: str, **extra: Any) -> faust.App:
    """A Faust app with the engine's options and tuned transport
    (``streams/transport.py``); the worker's and the no-op baseline's."""
    app = faust.App(app_id, **faust_options(settings), **extra)
    fetch = FetchTuning(settings.faust_fetch_min_bytes, settings.faust_fetch_max_wait_ms)
    transport.install(app, fetch)
    return app


def invalidating(tables: Tables) -> Callable[..., Awaitable[None]]:
    """The receiver of Faust's ``on_partitions_assigned`` and
    ``on_rebalance_complete`` (sent once the tables are recovered): the
    tables' indexes are rebuilt on next use (the assigned partitions' values
    came from changelogs, not through the index)."""

    async def invalidate(*_: object, **__: object) -> None:
        tables.invalidate()

    return invalidate


INDEX_STEP = 2_000  # entries scanned between two turns of the event loop (about 20 ms)
INDEX_CHECK_S = 0.5


def rebuild_indexes(app: faust.App, tables: Tables) -> None:
    """Rebuild the stale table indexes in the background, a step at a time,
    once the tables are recovered (a timer; the sweepers wait meanwhile)."""

    @app.timer(interval=INDEX_CHECK_S)
    async def rebuild_stale_indexes() -> None:
        try:
            while not app.rebalancing:
                if tables.rebuild_step(INDEX_STEP):
                    return
                await asyncio.sleep(0)  # a step at a time: the agents run in between
        except Exception:  # a timer must not raise; the next tick goes on
            log.exception("table index rebuild: unexpected error; it goes on next time")


def create_app(
    settings: Settings,
    connect: Callable[[], Awaitable[WorkerPorts]],
    offsets: watchdog.Offsets,
    unpayable: frozenset[str] = frozenset(),
) -> faust.App:
    """The worker's app: its tables, agents, timers and views (``connect`` runs
    when the worker starts; ``offsets`` reads the group's committed and end
    offsets, for the partition watchdog; ``unpayable``: the contracts' addresses, refused
    as payees)."""
    commits.install()  # commit only past handled records (see streams/commits.py)
    app = faust_app(
        settings,
        settings.app_id,
        web_port=settings.worker_web_port,
        web_host=settings.host,
        web_bind=settings.host,
        datadir=str(settings.state_dir / "faust"),
    )
    tables = declare_tables(app, settings)
    runtime = Runtime.build(app, settings, utcnow)
    ports = Connection(connect)
    connection.register(app, ports)

    merchants = MerchantDirectory(ports)
    retention = Retention(settings, tables.payments, tables.retired, utcnow)
    fraud = FraudDeps(
        settings,
        tables.payments,
        tables.balances,
        tables.velocity,
        utcnow,
        unpayable,
        merchants,
        tables.retired,
        retention,
    )
    app.on_partitions_assigned.connect(invalidating(tables))
    app.on_rebalance_complete.connect(invalidating(tables))
    rebuild_indexes(app, tables)

    async def flush_producer() -> None:  # app.producer exists once the worker runs
        await writes.durable(app.producer)

    settlement = SettlementDeps(settings, tables.payments, utcnow)
    submitted = SubmittedDeps(tables.payments, tables.balances, utcnow)
    owned = scheduler.active_partitions(app, settings.topic(FRAUD_SCORED))
    sends = Scheduler(settlement, tables.payments, ports, runtime.send, flush_producer, owned)
    recall = DepositRecall(ports, tables.balances)
    reconcile = ReconcileDeps(
        tables.payments,
        tables.balances,
        utcnow,
        sends.handled.forget,
        settings.deposit_memory,
        recall.booked,
    )
    review = ReviewDeps(settings, tables.payments, tables.balances, utcnow)
    payments_requested.register(app, runtime, fraud, merchants)
    streams_merchants.register(app, merchants, settings.merchant_refresh_s)
    fraud_scored.register(app, runtime, settlement)
    chain_submitted.register(app, runtime, submitted)
    chain_events.register(app, runtime, reconcile, recall)
    review_decisions.register(app, runtime, review)

    scheduler.register(app, sends)
    listening.register(
        app, Listening(settings, ports, runtime.send, flush_producer, runtime.metrics)
    )
    decided_here = scheduler.active_partitions(app, settings.topic(REVIEW_DECISIONS))
    reviews.register(
        app, reviews.ReviewExpiry(settings, tables.payments, decided_here, runtime.send, utcnow)
    )
    for name, table in tables.named().items():
        runtime.metrics.table_entries.labels(table=name).set_function(table.__len__)
    for status in WATCHED_STATUSES:
        runtime.metrics.oldest_hold.labels(status).set_function(_oldest(tables.payments, status))
    web.register(app, tables.balances, runtime)
    windows.register(app, runtime.windows)
    watched = [settings.topic(name) for name in WORKER_CONSUMES]
    repair = functools.partial(watchdog.refetch, app)
    watchdog.register(app, watchdog.Watchdog(app, watched, runtime.progress, offsets, repair))
    return app


def _oldest(payments: ModelTable[PaymentState], status: str) -> Callable[[], float]:
    """The age of the oldest payment in ``status``, read when Prometheus scrapes."""
    return lambda: payments.oldest_s(status, time.time())
