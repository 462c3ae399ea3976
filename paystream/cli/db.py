"""``paystream db ...`` and ``paystream audit verify``: the PostgreSQL side."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import psycopg

from services.bootstrap import ensure_partitions, pg_connection, prepare_schema
from services.errors import PaystreamError
from services.metrics.catalogue import SinkMetrics
from services.settings import Settings
from services.store.errors import translated


@contextmanager
def database(settings: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection whose errors a user can fix are one-line ``PaystreamError``s."""
    with translated(settings), pg_connection(settings) as conn:
        yield conn


@click.group()
def db() -> None:
    """Schema migrations of the PostgreSQL system of record."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the SQL; change nothing.")
@click.pass_obj
def migrate(settings: Settings, revision: str, dry_run: bool) -> None:
    """Upgrade the schema (to the newest revision by default)."""
    from services.store.schema import upgrade

    sql = upgrade(settings, revision, dry_run=dry_run)
    if sql is not None:
        click.echo(sql)


@db.command()
@click.argument("revision")
@click.option("--dry-run", is_flag=True, help="Print the SQL; change nothing.")
@click.pass_obj
def downgrade(settings: Settings, revision: str, dry_run: bool) -> None:
    """Downgrade the schema to REVISION ("base" removes everything)."""
    from services.store.schema import downgrade as run_downgrade

    sql = run_downgrade(settings, revision, dry_run=dry_run)
    if sql is not None:
        click.echo(sql)


@db.command()
@click.option("--months", default=2, show_default=True, help="Months ahead to create.")
@click.pass_obj
def partitions(settings: Settings, months: int) -> None:
    """Create the monthly partitions of payments that are missing."""
    click.echo(f"created {ensure_partitions(settings, months)} partition(s)")


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command()
@click.pass_obj
def verify(settings: Settings) -> None:
    """Check every row of the audit chain; exit 1 on any edit, deletion or insertion."""
    from services.store.audit import verify as verify_chain

    with database(settings) as conn:
        broken = verify_chain(conn)
        (count,) = conn.execute("SELECT count(*) FROM audit_log").fetchone() or (0,)
    for item in broken:
        click.echo(f"row {item.seq}: {item.reason}", err=True)
    click.echo(f"{count} rows, {len(broken)} broken")
    if broken:
        sys.exit(1)


@click.command()
@click.pass_obj
def sink(settings: Settings) -> None:
    """Run the ledger sink in the foreground (migrates the schema and creates the
    topics first). It serves Prometheus metrics, with every engine consumer
    group's lag, on PAYSTREAM_SINK_METRICS_PORT."""
    import asyncio
    import signal

    from services.bootstrap import sink_bundle
    from streams.ops.lag import LagExporter
    from streams.ops.topics import create_topics
    from streams.sink import LedgerSink, group_id

    prepare_schema(settings)
    create_topics(settings)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    metrics = SinkMetrics.create()
    serve_metrics(settings, metrics)
    exporter = LagExporter(settings, metrics).start()

    async def go() -> None:
        async with sink_bundle(settings, group_id(settings)) as bundle:
            sink = LedgerSink(settings, bundle, metrics=metrics)
            # Started: what is alive now lives as long as this process. Out of
            # the collector's sight, full collections stop pausing it ~100 ms.
            gc.freeze()
            await sink.run(lambda: stopping)

    try:
        asyncio.run(go())
    finally:
        exporter.stop()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def reconcile(settings: Settings, as_json: bool) -> None:
    """Compare PostgreSQL, the Faust balances, payments.settled and the chain;
    exit 1 on any mismatch."""
    import asyncio
    import json

    from services.bootstrap import reconcile_bundle
    from streams.ops.reconcile import Report
    from streams.ops.reconcile import reconcile as run

    async def go() -> Report:
        async with reconcile_bundle(settings) as bundle:
            return await run(settings, bundle)

    report = asyncio.run(go())
    if as_json:
        click.echo(
            json.dumps(
                {"counts": report.counts, "mismatches": report.mismatches}, indent=2, default=str
            )
        )
    else:
        for name, count in report.counts.items():
            click.echo(f"{name:>32}: {count}")
        for item in report.mismatches[:50]:
            click.echo(f"MISMATCH {item}")
        click.echo(f"{len(report.mismatches)} mismatch(es)")
    if report.mismatches:
        sys.exit(1)


def serve_metrics(settings: Settings, metrics: SinkMetrics) -> None:
    """Serve ``/metrics`` on the sink's port (a thread), or stop naming the fix."""
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.sink_metrics_port, addr=settings.host, registry=metrics.registry)
    except OSError as exc:
        raise PaystreamError(
            f"port {settings.sink_metrics_port} of the sink's metrics is taken ({exc.strerror}): "
            "set PAYSTREAM_SINK_METRICS_PORT"
        ) from exc
