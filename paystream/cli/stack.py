"""``paystream stack``: start, stop and inspect the local stack."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.console import Console
from rich.table import Table

from devtools.stack.errors import StackError
from devtools.stack.manager import LocalStack
from devtools.stack.process import tail
from services.settings import Settings

SERVICE_NAMES = click.Choice(["postgres", "redis", "kafka", "anvil", "alertmanager", "prometheus"])

_err = Console(stderr=True)


def _say(message: str) -> None:
    _err.print(message, highlight=False)


def _fail(exc: StackError) -> None:
    _err.print(f"[bold red]error:[/] {exc}", highlight=False)
    sys.exit(1)


@click.group()
def stack() -> None:
    """The local stack: Kafka (KRaft), PostgreSQL, Redis, anvil, Alertmanager and
    Prometheus."""


@stack.command()
@click.argument("services", nargs=-1, type=SERVICE_NAMES)
@click.pass_obj
def up(settings: Settings, services: tuple[str, ...]) -> None:
    """Install what is missing and start every service (or only SERVICES)."""
    started = time.monotonic()
    try:
        LocalStack(settings).up(list(services), report=_say)
    except StackError as exc:
        _fail(exc)
    _say(f"stack up in {time.monotonic() - started:.1f} s")


@stack.command()
@click.argument("services", nargs=-1, type=SERVICE_NAMES)
@click.pass_obj
def down(settings: Settings, services: tuple[str, ...]) -> None:
    """Stop the processes the stack started (by their pids); data is kept."""
    LocalStack(settings).down(list(services), report=_say)


@stack.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per service.")
@click.argument("services", nargs=-1, type=SERVICE_NAMES)
@click.pass_obj
def status(settings: Settings, as_json: bool, services: tuple[str, ...]) -> None:
    """Address and health of each service; exits 1 if any is unhealthy."""
    rows = LocalStack(settings).status(list(services))
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    else:
        table = Table("service", "url", "healthy", "ours", "pid")
        table.add_column("data", overflow="fold")  # a path is wrapped, never cut short
        for column in (table.columns[0], table.columns[1]):
            column.overflow = "fold"
        for row in rows:
            table.add_row(
                row.name,
                row.url,
                "[green]yes[/]" if row.healthy else "[red]no[/]",
                "yes" if row.managed else "no",
                str(row.pid or "-"),
                row.data,
            )
        Console().print(table)
    if not all(row.healthy for row in rows):
        sys.exit(1)


@stack.command()
@click.argument("service", type=SERVICE_NAMES)
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.pass_obj
def logs(settings: Settings, service: str, lines: int, follow: bool) -> None:
    """Print the end of a service's log."""
    path = LocalStack(settings).select([service])[0].log_path()
    click.echo(tail(path, lines))
    if not follow or not path.exists():
        return
    with path.open("rb") as fh:
        fh.seek(0, 2)
        try:
            while True:
                chunk = fh.read()
                if chunk:
                    click.echo(chunk.decode("utf-8", errors="replace"), nl=False)
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return


@stack.command()
@click.argument("services", nargs=-1, type=SERVICE_NAMES)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def reset(settings: Settings, services: tuple[str, ...], yes: bool) -> None:
    """Stop the stack and delete its data (Kafka jars and npm packages stay)."""
    if not yes:
        click.confirm("Delete all local data of the stack?", abort=True)
    LocalStack(settings).reset(list(services), report=_say)
