"""``paystream merchants create|list``: the merchants payments may name. A
request's ``merchant_id`` is honoured only when its payee is the merchant's
payout address; the merchant's fee is fixed when the payment is scored and
paid on chain to the platform's fee account."""

from __future__ import annotations

import getpass
import json

import click
from eth_utils.address import is_address, is_checksum_address

from schemas.merchants import FEE_BPS_MAX, Merchant
from schemas.onchain import ZERO_ADDRESS
from services.settings import Settings


@click.group()
def merchants() -> None:
    """Register merchants and list them."""


def _payout_address(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    mixed = value != value.lower() and value != value.upper()
    if not is_address(value) or (mixed and not is_checksum_address(value)):
        raise click.BadParameter(f"{value} is not an address (0x and 40 hex digits, EIP-55)")
    if value.lower() == ZERO_ADDRESS:
        raise click.BadParameter("the zero address can never be paid")
    return value.lower()


@merchants.command()
@click.argument("name")
@click.option(
    "--payout-address",
    required=True,
    callback=_payout_address,
    help="Where the merchant's payments are paid (one merchant per address).",
)
@click.option(
    "--fee-bps",
    type=click.IntRange(0, FEE_BPS_MAX),
    default=0,
    show_default=True,
    help="The platform's fee, in basis points of each payment (250 = 2.5 %).",
)
@click.option("--id", "merchant_id", default=None, help="The merchant id [default: generated].")
@click.option("--by", "actor", default=getpass.getuser, help="Who registers it [default: you].")
@click.option("--json", "as_json", is_flag=True, help="Print the merchant as JSON.")
@click.pass_obj
def create(
    settings: Settings,
    name: str,
    payout_address: str,
    fee_bps: int,
    merchant_id: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Register a merchant NAME (recorded in the audit log). Workers load it when
    a payment names it (at most once a second)."""
    from pydantic import ValidationError

    from paystream.cli.db import database
    from services.store.merchants import create_merchant, new_merchant_id

    try:
        merchant = Merchant(
            merchant_id=merchant_id or new_merchant_id(),
            name=name,
            payout_address=payout_address,
            fee_bps=fee_bps,
        )
    except ValidationError as exc:
        raise click.BadParameter(str(exc.errors()[0]["msg"]), param_hint="--id") from exc
    with database(settings) as conn:
        create_merchant(conn, merchant, actor)
    _show(merchant, as_json)


@merchants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_obj
def list_all(settings: Settings, as_json: bool) -> None:
    """The merchants that can be paid, oldest first."""
    from paystream.cli.db import database
    from services.store.merchants import list_merchants

    with database(settings) as conn:
        found = list_merchants(conn)
    for merchant in found:
        _show(merchant, as_json)
    if not as_json:
        click.echo(f"{len(found)} merchant(s)")


def _show(merchant: Merchant, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(merchant.model_dump()))
    else:
        click.echo(
            f"{merchant.merchant_id}  {merchant.name}  pays to {merchant.payout_address}  "
            f"fee {merchant.fee_bps} bps"
        )
