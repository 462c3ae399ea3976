"""``paystream mandates grant|revoke|list``: which payer accounts let which
merchants collect from them through the gateway (recorded in the audit log)."""

from __future__ import annotations

import getpass
import json

import click

from services.settings import Settings


@click.group()
def mandates() -> None:
    """Let merchants collect from payer accounts, or stop them."""


@mandates.command()
@click.argument("account")
@click.argument("merchant_id")
@click.option(
    "--max-amount",
    type=click.IntRange(min=1),
    default=None,
    help="The most one payment may collect, in minor units [default: no limit].",
)
@click.option("--by", "actor", default=getpass.getuser, help="Who grants it [default: you].")
@click.pass_obj
def grant(
    settings: Settings, account: str, merchant_id: str, max_amount: int | None, actor: str
) -> None:
    """Let MERCHANT_ID collect payments from ACCOUNT (granting again replaces the limit)."""
    from paystream.cli.db import database
    from services.store.keys import grant_mandate

    with database(settings) as conn:
        grant_mandate(conn, account, merchant_id, max_amount, actor)
    limit = f"at most {max_amount} per payment" if max_amount else "any amount"
    click.echo(f"{merchant_id} may collect from {account}: {limit}")


@mandates.command()
@click.argument("account")
@click.argument("merchant_id")
@click.option("--by", "actor", default=getpass.getuser, help="Who revokes it [default: you].")
@click.pass_obj
def revoke(settings: Settings, account: str, merchant_id: str, actor: str) -> None:
    """Stop MERCHANT_ID collecting from ACCOUNT (payments already accepted go on)."""
    from paystream.cli.db import database
    from services.errors import ConfigError
    from services.store.keys import revoke_mandate

    with database(settings) as conn:
        if not revoke_mandate(conn, account, merchant_id, actor):
            raise ConfigError(f"{account} has no mandate for {merchant_id}")
    click.echo(f"{merchant_id} may no longer collect from {account}")


@mandates.command("list")
@click.option("--merchant", "merchant_id", default=None, help="Only this merchant's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_obj
def list_all(settings: Settings, merchant_id: str | None, as_json: bool) -> None:
    """The live mandates, oldest first."""
    from paystream.cli.db import database
    from services.store.keys import list_mandates

    with database(settings) as conn:
        rows = list_mandates(conn, merchant_id)
    for account, merchant, max_amount, granted in rows:
        limit = None if max_amount is None else int(max_amount)
        if as_json:
            row = {"account": account, "merchant_id": merchant, "max_amount": limit}
            click.echo(json.dumps(row | {"granted_at": granted.isoformat()}))
        else:
            click.echo(f"{account}  {merchant}  max {limit or '-'}  since {granted:%Y-%m-%d %H:%M}")
    if not as_json:
        click.echo(f"{len(rows)} mandate(s)")
