"""``paystream review list|approve|deny``: the payments the fraud rules held for
a human, and the decisions that end their holds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import click

from paystream.cli.decisions import Held, Status, decide_all, decision_options
from services.settings import Settings


@click.group()
def review() -> None:
    """Payments held for review: list them, approve or deny them. One that nobody
    decides on is denied when it expires (review_expiry_s, 24 h by default)."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_obj
def list_held(settings: Settings, as_json: bool) -> None:
    """The payments held for review, oldest first."""
    from paystream.cli.db import database
    from services.store.reviews import held_for_review

    with database(settings) as conn:
        held = held_for_review(conn)
    for h in held:
        if as_json:
            click.echo(json.dumps(h.__dict__, default=str))
        else:
            click.echo(
                f"{h.payment_id}  {h.payer_account} -> {h.payee_address}  "
                f"{h.amount} {h.currency}  score {h.fraud_score} {','.join(h.rules)}  "
                f"held {_at(h.held_at)}  expires {_at(h.expires_at)}"
            )
    if not as_json:
        click.echo(f"{len(held)} payment(s) held for review")


def _at(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if when else "-"


def _payers_in_review(conn: Any, payment_id: uuid.UUID) -> list[str]:
    from services.store.reviews import held_for_review

    return [h.payer_account for h in held_for_review(conn, payment_id)]


def _in_review(status: Status) -> bool:
    return status is not None and status[0] == "REVIEW"


IN_REVIEW = Held("held for review", "review", _payers_in_review, _in_review)


@review.command()
@decision_options
@click.pass_obj
def approve(settings: Settings, /, **options: Any) -> None:
    """Let held payments through: they go on to settlement."""
    decide_all(settings, IN_REVIEW, "APPROVE", **options)


@review.command()
@decision_options
@click.pass_obj
def deny(settings: Settings, /, **options: Any) -> None:
    """Fail held payments (REVIEW_DENIED) and release their holds."""
    decide_all(settings, IN_REVIEW, "DENY", **options)
