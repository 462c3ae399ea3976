"""The ``paystream`` command line."""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from paystream.cli.admin import admin
from paystream.cli.bench import bench
from paystream.cli.chain import chain, deposit
from paystream.cli.db import audit, db, reconcile, sink
from paystream.cli.gateway import gateway
from paystream.cli.lag import lag
from paystream.cli.mandates import mandates
from paystream.cli.merchants import merchants
from paystream.cli.mismatches import mismatches
from paystream.cli.ops import ops
from paystream.cli.pipeline import demo, topics, worker
from paystream.cli.review import review
from paystream.cli.signer import signer
from paystream.cli.stack import stack
from services.errors import PaystreamError
from services.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paystream")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """paystream: an event-driven payment engine (Kafka, PostgreSQL, Redis, EVM).

    Settings come from PAYSTREAM_* environment variables or a .env file
    (see .env.example).
    """
    ctx.obj = Settings()


cli.add_command(stack)
cli.add_command(chain)
cli.add_command(deposit)
cli.add_command(topics)
cli.add_command(worker)
cli.add_command(demo)
cli.add_command(db)
cli.add_command(audit)
cli.add_command(sink)
cli.add_command(reconcile)
cli.add_command(lag)
cli.add_command(review)
cli.add_command(merchants)
cli.add_command(mandates)
cli.add_command(gateway)
cli.add_command(mismatches)
cli.add_command(signer)
cli.add_command(bench)
cli.add_command(ops)
cli.add_command(admin)


def main() -> None:
    """The ``paystream`` command. An error a user can fix (a service down, no
    schema, no contract, a taken port) is one line naming the fix, exit 1."""
    try:
        cli()
    except PaystreamError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ValidationError as exc:  # the settings (PAYSTREAM_* variables, .env)
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        click.echo(f"error: invalid settings: {problems}", err=True)
        sys.exit(1)
