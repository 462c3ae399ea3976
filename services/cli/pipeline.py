"""``paystream topics create`` and ``paystream worker``."""

from __future__ import annotations

import json

import click

from services.settings import Settings


@click.group()
def topics() -> None:
    """The pipeline's Kafka topics."""


@topics.command("create")
@click.pass_obj
def topics_create(settings: Settings) -> None:
    """Create the topics that are missing (partitions and retention from Settings)."""
    from services.topics import create_topics

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
    """Run one Faust worker in the foreground (several may share the partitions)."""
    from faust.worker import Worker

    from services.topics import create_topics
    from streams.app import create_app

    create_topics(settings)
    if web_port is not None:
        settings = settings.model_copy(update={"worker_web_port": web_port})
    app = create_app(settings)
    Worker(app, loglevel=loglevel).execute_from_commandline()
