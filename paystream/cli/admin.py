"""``paystream admin ...``: the settlement contract's admin functions, audited.

Each action says what it will do and asks for confirmation (unless
``--yes``), is recorded in ``admin_actions`` with its audit-log row before
its transactions are sent (who, what, with which parameters), sends them with
the key its role needs (``PAYSTREAM_CHAIN_ADMIN_KEY``; ``pause``:
``PAYSTREAM_CHAIN_PAUSER_KEY``), and records their hashes, or why it failed,
with a second audit row. ``paystream audit verify`` checks those rows with
the rest of the chain."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

from services.settings import Settings


@dataclass(frozen=True)
class Call:
    key: Callable[[Settings], LocalAccount]
    fn: str
    args: tuple[Any, ...] = ()


def _checksummed(value: str) -> str:
    if not is_address(value):
        raise click.BadParameter(f"{value} is not an address")
    return str(to_checksum_address(value))


def _address(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    return _checksummed(value)


def _addresses(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    return tuple(_checksummed(v) for v in values)


def common(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(fn)
    fn = click.option(
        "--by",
        default=getpass.getuser,
        show_default="your user name",
        help="Who acts (written to the audit log).",
    )(fn)
    return click.pass_obj(fn)


@click.group()
def admin() -> None:
    """The settlement contract's admin functions, each confirmed and audited."""


def act(
    settings: Settings, by: str, yes: bool, action: str, params: dict[str, Any], calls: list[Call]
) -> None:
    """Confirm, record the request, send ``calls`` in order, record the end."""
    from paystream.cli.db import database
    from services.store.admin import ended, requested

    click.echo(f"{action} {json.dumps(params)} on chain {settings.chain_id}", err=True)
    if not yes:
        click.confirm("Send it?", abort=True, err=True)
    with database(settings) as conn:
        action_id = requested(conn, by, action, params)
    hashes: list[str] = []
    error: str | None = None
    try:
        asyncio.run(_send(settings, calls, hashes))
    except Exception as exc:  # noqa: BLE001 - recorded as failed, then reported
        error = f"{type(exc).__name__}: {exc}"
    with database(settings) as conn:
        ended(conn, action_id, hashes, error)
    click.echo(json.dumps({"action_id": str(action_id), "action": action, "tx_hashes": hashes}))
    if error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


async def _send(settings: Settings, calls: list[Call], hashes: list[str]) -> None:
    from services.bootstrap import chain_client

    client = await chain_client(settings)
    try:
        for call in calls:
            receipt = await client.call_settlement(call.key(settings), call.fn, *call.args)
            hashes.append("0x" + bytes(receipt["transactionHash"]).hex())
    finally:
        await client.close()


@admin.command("pause")
@common
def pause_cmd(settings: Settings, by: str, yes: bool) -> None:
    """Stop settlement and deposits on the contract (pauser key). Payments in
    flight stay held and their batches are sent again once it is unpaused:
    none fails for it."""
    from services.chain.keys import pauser_key

    act(settings, by, yes, "pause", {}, [Call(pauser_key, "pause")])


@admin.command("unpause")
@common
def unpause_cmd(settings: Settings, by: str, yes: bool) -> None:
    """Let the contract settle again; held batches go out within
    ``batch_timeout_s``."""
    from services.chain.keys import admin_key

    act(settings, by, yes, "unpause", {}, [Call(admin_key, "unpause")])


@admin.command("withdraw")
@click.option("--to", "to", required=True, callback=_address, help="The address paid.")
@click.option("--amount", type=click.IntRange(min=1), required=True, help="Token base units.")
@common
def withdraw_cmd(settings: Settings, by: str, yes: bool, to: str, amount: int) -> None:
    """Move treasury funds out, at most the surplus: what the treasury holds
    beyond what the ledger owes the payers (so reconciliation stays clean)."""
    from services.chain.keys import admin_key

    surplus = _surplus(settings)
    if amount > surplus:
        click.echo(
            f"error: {amount} is more than the treasury's surplus ({surplus}: what it holds "
            "beyond what the ledger owes the payers)",
            err=True,
        )
        sys.exit(1)
    params = {"to": to, "amount": amount, "surplus": surplus}
    act(settings, by, yes, "withdraw", params, [Call(admin_key, "withdraw", (to, amount))])


def _surplus(settings: Settings) -> int:
    from paystream.cli.db import database
    from services.bootstrap import chain_client
    from services.store.admin import owed_to_payers

    async def treasury() -> int:
        client = await chain_client(settings)
        try:
            return await client.treasury_balance()
        finally:
            await client.close()

    held = asyncio.run(treasury())
    with database(settings) as conn:
        return held - owed_to_payers(conn)


@admin.command("set-signers")
@click.option("--add", multiple=True, callback=_addresses, help="An approval signer to add.")
@click.option("--remove", multiple=True, callback=_addresses, help="An approval signer to remove.")
@common
def set_signers_cmd(
    settings: Settings, by: str, yes: bool, add: tuple[str, ...], remove: tuple[str, ...]
) -> None:
    """Add or remove the approval signers whose signatures count for batches
    over the approval threshold (one transaction each). The contract refuses a
    change that leaves fewer signers than the policy requires."""
    from services.chain.keys import admin_key

    if not add and not remove:
        raise click.UsageError("give --add or --remove")
    calls = [Call(admin_key, "setSigner", (a, True)) for a in add]
    calls += [Call(admin_key, "setSigner", (r, False)) for r in remove]
    act(settings, by, yes, "set-signers", {"add": list(add), "remove": list(remove)}, calls)


@admin.command("set-policy")
@click.option("--required", type=click.IntRange(min=1), required=True, help="Signatures needed.")
@click.option(
    "--threshold",
    type=click.IntRange(min=0),
    required=True,
    help="Batch total (token base units) above which they are needed.",
)
@common
def set_policy_cmd(settings: Settings, by: str, yes: bool, required: int, threshold: int) -> None:
    """The contract's approval policy: batches over ``--threshold`` need
    ``--required`` signatures of the approval signers. Set
    PAYSTREAM_CHAIN_APPROVAL_THRESHOLD to the same threshold for the workers."""
    from services.chain.keys import admin_key

    params = {"required": required, "threshold": threshold}
    act(
        settings,
        by,
        yes,
        "set-policy",
        params,
        [Call(admin_key, "setApprovalPolicy", (required, threshold))],
    )


@admin.command("set-daily-cap")
@click.argument("amount", type=click.IntRange(min=1, max=2**96 - 1))
@common
def set_daily_cap_cmd(settings: Settings, by: str, yes: bool, amount: int) -> None:
    """The contract's rolling daily cap on settlement (token base units; a new
    cap starts full). ``paystream chain daily-cap`` shows it."""
    from services.chain.keys import admin_key

    act(
        settings,
        by,
        yes,
        "set-daily-cap",
        {"amount": amount},
        [Call(admin_key, "setDailyCap", (amount,))],
    )
