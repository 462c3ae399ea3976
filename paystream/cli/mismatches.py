"""``paystream mismatches list|accept|reject``: payments the chain paid
otherwise than requested (another payee, amount or fee). The reconciler holds
each in MISMATCH, its hold kept, until an operator decides:

- accept: the chain's payout is the payment's settlement; the payer is charged
  the payment's amount;
- reject: it is not; the payment fails (SETTLEMENT_MISMATCH) and the payer is
  charged nothing.

Either way the ledger books what the chain paid, and the difference from what
the payer was charged goes to the platform:suspense account, to recover by hand."""

from __future__ import annotations

import json
import uuid
from typing import Any

import click

from paystream.cli.decisions import Held, Status, decide_all, decision_options
from services.settings import Settings


@click.group()
def mismatches() -> None:
    """Payments the chain paid otherwise than requested: list, accept, reject."""


@mismatches.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_obj
def list_open(settings: Settings, as_json: bool) -> None:
    """The payments held in MISMATCH, oldest first, with what the chain paid."""
    from paystream.cli.db import database
    from services.store.mismatches import open_mismatches

    with database(settings) as conn:
        found = open_mismatches(conn)
    for m in found:
        if as_json:
            row = {**m.__dict__, "chain": m.chain.model_dump(mode="json")}
            click.echo(json.dumps(row, default=str))
        else:
            click.echo(
                f"{m.payment_id}  {m.payer_account}  sequence {m.chain.sequence} "
                f"tx {m.chain.tx_hash}  {m.detail}"
            )
    if not as_json:
        click.echo(f"{len(found)} payment(s) in MISMATCH")


def _payers_in_mismatch(conn: Any, payment_id: uuid.UUID) -> list[str]:
    from services.store.mismatches import open_mismatches

    return [m.payer_account for m in open_mismatches(conn, payment_id)]


def _unresolved(status: Status) -> bool:
    return status is None  # a payment in MISMATCH has no row until it is resolved


IN_MISMATCH = Held("in MISMATCH", "mismatch", _payers_in_mismatch, _unresolved)


@mismatches.command()
@decision_options
@click.pass_obj
def accept(settings: Settings, /, **options: Any) -> None:
    """The chain's payout stands as the payment's settlement (SETTLED)."""
    decide_all(settings, IN_MISMATCH, "ACCEPT", **options)


@mismatches.command()
@decision_options
@click.pass_obj
def reject(settings: Settings, /, **options: Any) -> None:
    """The chain's payout is not the payment's: it fails (SETTLEMENT_MISMATCH)."""
    decide_all(settings, IN_MISMATCH, "REJECT", **options)
