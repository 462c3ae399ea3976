"""``paystream merchants create|list|rotate-key|revoke-key``: the merchants
payments may name, and their API keys for the gateway (docs/api.md). A
request's ``merchant_id`` is honoured only when its payee is the merchant's
payout address; the merchant's fee is fixed when the payment is scored and
paid on chain to the platform's fee account. A key is printed once, when it is
created: only its hash is kept."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from eth_utils.address import is_address, is_checksum_address

from schemas.api import SCOPES, Scope
from schemas.merchants import FEE_BPS_MAX, Merchant
from schemas.onchain import ZERO_ADDRESS
from services.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def merchants() -> None:
    """Register merchants, list them, and manage their API keys."""


def _scopes() -> Callable[[F], F]:
    return click.option(
        "--scope",
        "scopes",
        multiple=True,
        type=click.Choice(SCOPES),
        default=SCOPES,
        show_default=True,
        help="What the API key may do (repeat the option for several).",
    )


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
@_scopes()
@click.option("--by", "actor", default=getpass.getuser, help="Who registers it [default: you].")
@click.option("--json", "as_json", is_flag=True, help="Print the merchant and its API key as JSON.")
@click.pass_obj
def create(
    settings: Settings,
    name: str,
    payout_address: str,
    fee_bps: int,
    merchant_id: str | None,
    scopes: Sequence[Scope],
    actor: str,
    as_json: bool,
) -> None:
    """Register a merchant NAME with an API key (recorded in the audit log; the
    key is printed once). Workers load it when a payment names it (at most once
    a second)."""
    from pydantic import ValidationError

    from paystream.cli.db import database
    from services.store.keys import issue_key
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
    with database(settings) as conn, conn.transaction():
        create_merchant(conn, merchant, actor)
        api_key = issue_key(conn, merchant.merchant_id, scopes, actor)
    _show(merchant, as_json, {"api_key": api_key, "scopes": list(scopes)})
    if not as_json:
        click.echo(f"API key (shown once, keep it secret): {api_key}")


@merchants.command("rotate-key")
@click.argument("merchant_id")
@_scopes()
@click.option("--by", "actor", default=getpass.getuser, help="Who rotates it [default: you].")
@click.option("--json", "as_json", is_flag=True, help="Print the new key as JSON.")
@click.pass_obj
def rotate_key(
    settings: Settings, merchant_id: str, scopes: Sequence[Scope], actor: str, as_json: bool
) -> None:
    """Give MERCHANT_ID a new API key and revoke its others, at once."""
    from paystream.cli.db import database
    from services.store.keys import rotate_key as rotate

    with database(settings) as conn:
        api_key, revoked = rotate(conn, merchant_id, scopes, actor)
    _forget(settings, revoked)
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant_id, "api_key": api_key, "revoked": revoked}))
    else:
        click.echo(f"revoked {len(revoked)} key(s): {', '.join(revoked) or '-'}")
        click.echo(f"API key (shown once, keep it secret): {api_key}")


@merchants.command("revoke-key")
@click.argument("merchant_id")
@click.option("--key-id", default=None, help="Only this key (the 16 hex digits after psk_).")
@click.option("--by", "actor", default=getpass.getuser, help="Who revokes it [default: you].")
@click.pass_obj
def revoke_key(settings: Settings, merchant_id: str, key_id: str | None, actor: str) -> None:
    """Revoke MERCHANT_ID's API keys (or one); they stop working at once."""
    from paystream.cli.db import database
    from services.store.keys import revoke_keys

    with database(settings) as conn, conn.transaction():
        revoked = revoke_keys(conn, merchant_id, actor, key_id)
    _forget(settings, revoked)
    click.echo(f"revoked {len(revoked)} key(s): {', '.join(revoked) or '-'}")


@merchants.command("limit")
@click.argument("merchant_id")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Requests per second [default: PAYSTREAM_GATEWAY_RATE_PER_S].",
)
@click.option(
    "--burst",
    type=click.IntRange(min=1),
    default=None,
    help="Requests at once [default: PAYSTREAM_GATEWAY_BURST].",
)
@click.option("--by", "actor", default=getpass.getuser, help="Who sets it [default: you].")
@click.pass_obj
def limit(
    settings: Settings, merchant_id: str, rate: float | None, burst: int | None, actor: str
) -> None:
    """Set the rate limit of MERCHANT_ID's live API keys (both unset: the defaults)."""
    from paystream.cli.db import database
    from services.store.keys import limit_keys

    with database(settings) as conn:
        limited = limit_keys(conn, merchant_id, rate, burst, actor)
    _forget(settings, limited)
    rate_text = f"{rate}/s" if rate else f"{settings.gateway_rate_per_s}/s (default)"
    burst_text = burst or f"{settings.gateway_burst} (default)"
    click.echo(f"{len(limited)} key(s) limited to {rate_text}, bursts of {burst_text}")


def _forget(settings: Settings, key_ids: list[str]) -> None:
    """Clear the gateway's cached entries of changed keys (or say it could not)."""
    import redis
    from redis.exceptions import RedisError

    from services.cache.aside import entry_name
    from services.errors import PaystreamError

    if not key_ids:
        return
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.connect_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
    )
    try:
        client.delete(*(entry_name("api_keys", k) for k in key_ids))
    except (RedisError, OSError) as exc:
        raise PaystreamError(
            f"the keys are changed in PostgreSQL, but Redis did not answer ({exc}): a gateway "
            "may use them as they were for up to 60 s, from its cache"
        ) from exc
    finally:
        client.close()


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


def _show(merchant: Merchant, as_json: bool, extra: dict[str, object] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(merchant.model_dump() | (extra or {})))
    else:
        click.echo(
            f"{merchant.merchant_id}  {merchant.name}  pays to {merchant.payout_address}  "
            f"fee {merchant.fee_bps} bps"
        )
