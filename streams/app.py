"""The Faust app: tables, the four agents, the batch flusher, the sweeper of
unsent batches, and the chain listener (on the leader only).

``create_app`` builds everything from Settings; nothing connects at import time.
The worker's adapters come from ``connect`` (``services.bootstrap.worker_ports``)
when the worker starts: the chain client needs the deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.topics import CHAIN_EVENTS, CHAIN_SUBMITTED, FRAUD_SCORED, PAYMENTS_REQUESTED
from services.ports import WorkerPorts
from services.settings import Settings
from streams import connection as connecting
from streams import listening
from streams import scheduler as scheduling
from streams.agents.shell import run
from streams.connection import Connection
from streams.listening import Listening
from streams.runtime import Runtime
from streams.scheduler import Scheduler
from streams.stages.fraud import FraudDeps, handle_request
from streams.stages.reconcile import ReconcileDeps, handle_chain_event
from streams.stages.settlement.batching import SettlementDeps, handle_scored
from streams.stages.submitted import SubmittedDeps, handle_submitted
from streams.state import Balance
from streams.tables import declare_tables

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
    connection = Connection(connect)

    fraud = FraudDeps(settings, tables.payments, tables.balances, tables.velocity, utcnow)
    settlement = SettlementDeps(settings, tables.payments, tables.sequences, utcnow)
    submitted = SubmittedDeps(tables.payments, tables.balances, utcnow)
    reconcile = ReconcileDeps(tables.payments, tables.balances, tables.sequences, utcnow)
    scheduler = Scheduler(
        settlement, tables.payments, connection, runtime.send, lambda: app.producer.flush()
    )
    connecting.register(app, connection)

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

    scheduling.register(app, scheduler)

    listening.register(app, Listening(settings, connection, runtime.send))

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
