"""``paystream topics create`` and ``paystream worker``."""

from __future__ import annotations

import json
from typing import Any

import click

from services.errors import ConfigError
from services.settings import Settings


@click.group()
def topics() -> None:
    """The pipeline's Kafka topics."""


@topics.command("create")
@click.pass_obj
def topics_create(settings: Settings) -> None:
    """Create the topics that are missing (partitions and retention from Settings)."""
    from streams.ops.topics import create_topics

    click.echo(json.dumps(create_topics(settings), indent=2))


@click.command()
@click.option(
    "-l",
    "--loglevel",
    default="warn",
    show_default=True,
    type=click.Choice(["crit", "error", "warn", "info", "debug"]),
)
@click.option("--web-port", type=int, default=None, help="Port of the worker's web view.")
@click.pass_obj
def worker(settings: Settings, loglevel: str, web_port: int | None) -> None:
    """Run one Faust worker in the foreground (several may share the partitions;
    migrates the schema and creates the topics first)."""
    import asyncio

    from devtools.stack.process import port_open
    from services.bootstrap import (
        group_offsets_reader,
        preflight_worker,
        prepare_schema,
        worker_ports,
    )
    from services.metrics.targets import registered
    from streams.app import create_app
    from streams.ops.topics import create_topics

    if web_port is not None:
        settings = settings.model_copy(update={"worker_web_port": web_port})
    use_event_loop(settings)
    if port_open(settings.host, settings.worker_web_port):
        raise ConfigError(
            f"port {settings.worker_web_port} of the worker's web view is taken (another "
            "worker?): start this one with --web-port N"
        )
    prepare_schema(settings)  # the claims and the send lock live in PostgreSQL
    create_topics(settings)
    contracts = asyncio.run(preflight_worker(settings))
    offsets = group_offsets_reader(settings)
    app = create_app(settings, lambda: worker_ports(settings), offsets, unpayable=contracts)
    address = f"{settings.host}:{settings.worker_web_port}"
    with registered(settings, f"worker-{settings.worker_web_port}", address):
        run_faust_worker(app, loglevel)


def use_event_loop(settings: Settings) -> None:
    """Run this process's event loops on uvloop unless ``faust_uvloop`` is off
    (set before the Faust app exists: the worker's loop is made from the policy)."""
    if settings.faust_uvloop:
        import mode.loop

        mode.loop.use("uvloop")


def run_faust_worker(app: Any, loglevel: str) -> None:
    """Run a Faust app's worker in the foreground (the engine's and the no-op baseline's)."""
    from faust.worker import Worker

    runner = Worker(app, loglevel=loglevel)
    # Faust's start-up spinner turns the root logger to DEBUG at -l warn and above:
    # every debug call in Faust and aiokafka then builds a record (8 % of a worker).
    runner.spinner = None
    runner.execute_from_commandline()


@click.command()
@click.option("--payers", default=20, show_default=True, help="Payer accounts to fund.")
@click.option("--payments", default=1000, show_default=True, help="Requests to publish.")
@click.option("--rate", default=100.0, show_default=True, help="Offered requests/s (0: max).")
@click.option(
    "--burst",
    default=1000,
    show_default=True,
    help="Then this many requests as fast as possible, to measure capacity (0: skip).",
)
@click.option("--json", "as_json", is_flag=True, help="Also print the summary as JSON.")
@click.pass_obj
def demo(
    settings: Settings, payers: int, payments: int, rate: float, burst: int, as_json: bool
) -> None:
    """Run everything end to end: stack, contracts, worker, deposits, payments, summary."""
    from rich.console import Console

    from devtools.demo.run import DemoPlan, run_demo
    from services.errors import PaystreamError

    plan = DemoPlan(payers=payers, payments=payments, rate_per_s=rate or None, burst=burst)
    try:
        summary = run_demo(settings, plan, Console(stderr=True))
    except PaystreamError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    merchant = summary["gateway"]
    if (
        summary["missing"]
        or summary["reconcile_mismatches"]
        or (merchant and merchant["not_ended"])
    ):
        raise SystemExit(1)
