"""``paystream chain ...`` and ``paystream deposit``: the settlement contract."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from devtools.bench.gas_report import GasRow
from schemas.onchain import account_ref
from services.bootstrap import chain_client, deploy_guarded, tx_sender, web3_client
from services.chain.deployment import deployment_json
from services.chain.keys import ChainKeys
from services.errors import PaystreamError
from services.settings import Settings

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except PaystreamError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.group()
def chain() -> None:
    """The settlement contract on the configured EVM chain."""


@chain.command("deploy")
@click.option(
    "--force",
    is_flag=True,
    help="Replace the recorded contracts even with payments in flight on them "
    "(only when that chain's state is gone).",
)
@click.pass_obj
def deploy_cmd(settings: Settings, force: bool) -> None:
    """Deploy the token and PaymentSettlement once; print the addresses as JSON.

    A new contract replacing a recorded one starts with an empty record of paid
    sequence numbers: it would pay again a payment the old one paid. So it is
    refused while payments that claimed a sequence have no outcome yet."""

    async def go() -> dict[str, Any]:
        deployment, new = await deploy_guarded(settings, force=force)
        click.echo("deployed" if new else "already deployed", err=True)
        return deployment_json(deployment)

    click.echo(json.dumps(_run(go())))


@chain.command("resume-settlement")
@click.option("--by", "by", required=True, help="Who checked the chain and resumes.")
@click.pass_obj
def resume_settlement_cmd(settings: Settings, by: str) -> None:
    """Let the workers send again after a reorg deeper than finality halted
    settlement (a DEEP_REORG alert). First check what the reorg removed: the
    engine has undone it (payments.reorged, reversed deposits) and holds those
    payments for sending again."""
    from paystream.cli.db import database
    from services.store.halts import resume

    with database(settings) as conn:
        reason = resume(conn, by)
    if reason is None:
        click.echo("settlement was not halted")
    else:
        click.echo(f"settlement resumed by {by}; it was halted: {reason}")


@chain.command("daily-cap")
@click.pass_obj
def daily_cap_cmd(settings: Settings) -> None:
    """Show the contract's rolling daily cap on settlement (token base units).
    Up to the cap may be paid at once, and what was paid flows back at the cap
    per day; a batch over what is left waits, held, until enough has flowed
    back. ``paystream admin set-daily-cap`` sets it."""

    async def go() -> dict[str, Any]:
        client = await chain_client(settings)
        try:
            capacity, available, updated_at = await client.settlement.functions.dailyCap().call()
        finally:
            await client.close()
        return {
            "capacity": int(capacity),
            "available_at_last_use": int(available),
            "last_used_at": int(updated_at),
        }

    click.echo(json.dumps(_run(go())))


@click.command()
@click.argument("account")
@click.argument("amount", type=click.IntRange(min=1))
@click.pass_obj
def deposit(settings: Settings, account: str, amount: int) -> None:
    """Deposit AMOUNT (token base units) on chain for payer ACCOUNT.

    Locally the funder key is minted test tokens first when it has too few.
    """

    async def go() -> dict[str, Any]:
        client = await chain_client(settings)
        try:
            keys = ChainKeys.from_settings(settings)
            if await client.token_balance(keys.funder.address) < amount:
                await client.call_token(keys.admin, "mint", keys.funder.address, amount)
            receipt = await client.deposit(keys.funder, account, amount)
        finally:
            await client.close()
        return {
            "account": account,
            "account_ref": account_ref(account),
            "amount": amount,
            "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "block_number": int(receipt["blockNumber"]),
        }

    click.echo(json.dumps(_run(go())))


@chain.command("gas-report")
@click.option(
    "--fee-bps",
    type=click.IntRange(0, 9_999),
    default=0,
    show_default=True,
    help="Each payment's fee (basis points): with fees, one more transfer per batch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list.")
@click.pass_obj
def gas_report(settings: Settings, fee_bps: int, as_json: bool) -> None:
    """Gas per payment of batched settlement vs one-by-one ERC-20 transfers."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from devtools.bench.gas_report import BATCH_SIZES, GasReport

    async def go() -> list[GasRow]:
        w3 = web3_client(settings)
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("gas report", total=1 + 2 * len(BATCH_SIZES))
            report = GasReport(w3, settings, tx_sender(w3, settings), fee_bps=fee_bps)
            return await report.run(lambda step: bar.update(task, advance=1, description=step))

    rows = _run(go())
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
        return
    table = Table("batch size", "payees", "gas / payment", "ERC-20 transfer", "ratio")
    for row in rows:
        ratio = row.gas_per_payment / row.baseline_gas_per_transfer
        table.add_row(
            str(row.batch_size),
            row.payees,
            f"{row.gas_per_payment:,}",
            f"{row.baseline_gas_per_transfer:,}",
            f"{ratio:.2f}",
        )
    Console().print(table)
