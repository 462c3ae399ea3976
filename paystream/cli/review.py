"""``paystream review list|approve|deny``: the payments the fraud rules held for
a human, and the decisions that end their holds."""

from __future__ import annotations

import getpass
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click

from services.errors import PaystreamError
from services.settings import Settings

DECIDED = {"APPROVE": "approved", "DENY": "denied"}


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


def _decision_options(f: Any) -> Any:
    f = click.argument(
        "payment_ids", metavar="PAYMENT_ID...", nargs=-1, required=True, type=click.UUID
    )(f)
    f = click.option("--note", default="", help="Why (kept with the decision).")(f)
    f = click.option(
        "--by", "decided_by", default=getpass.getuser, help="Who decides [default: you]."
    )(f)
    f = click.option("--payer", default=None, help="The payer, when two payers used the id.")(f)
    f = click.option(
        "--wait", default=30.0, show_default=True, help="Seconds to wait until it is applied."
    )(f)
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


@review.command()
@_decision_options
@click.pass_obj
def approve(settings: Settings, /, **options: Any) -> None:
    """Let held payments through: they go on to settlement."""
    _decide_all(settings, "APPROVE", **options)


@review.command()
@_decision_options
@click.pass_obj
def deny(settings: Settings, /, **options: Any) -> None:
    """Fail held payments (REVIEW_DENIED) and release their holds."""
    _decide_all(settings, "DENY", **options)


def _decide_all(
    settings: Settings,
    verdict: str,
    payment_ids: tuple[uuid.UUID, ...],
    note: str,
    decided_by: str,
    payer: str | None,
    wait: float,
    as_json: bool,
) -> None:
    """Check that every payment is held (nothing is sent otherwise), record each
    decision in the audit log, publish them, then wait until they are applied."""
    from paystream.cli.db import database
    from services.store import audit
    from services.store.reviews import status_of

    with database(settings) as conn:
        payers = {pid: _held_payer(conn, pid, payer) for pid in payment_ids}
        for pid, who in payers.items():
            detail = {"payer_account": who, "verdict": verdict, "note": note}
            audit.append(conn, decided_by, f"review.{verdict.lower()}", str(pid), detail)
        _publish(settings, payers, verdict, decided_by, note)
        deadline = time.monotonic() + wait
        statuses = {pid: status_of(conn, pid, who) for pid, who in payers.items()}
        while time.monotonic() < deadline and any(_waiting(s) for s in statuses.values()):
            time.sleep(0.5)
            statuses = {pid: status_of(conn, pid, who) for pid, who in payers.items()}
    for pid, status in statuses.items():
        _report(pid, payers[pid], verdict, status, wait, as_json)


def _held_payer(conn: Any, payment_id: uuid.UUID, payer: str | None) -> str:
    from services.store.reviews import held_for_review

    held = [h for h in held_for_review(conn, payment_id) if payer in (None, h.payer_account)]
    if not held:
        raise PaystreamError(f"no payment {payment_id} is held for review")
    if len(held) > 1:
        payers = ", ".join(h.payer_account for h in held)
        raise PaystreamError(f"{payment_id} is held for several payers ({payers}): use --payer")
    return held[0].payer_account


def _waiting(status: tuple[str, str | None] | None) -> bool:
    return status is not None and status[0] == "REVIEW"


def _report(
    payment_id: uuid.UUID,
    payer: str,
    verdict: str,
    status: tuple[str, str | None] | None,
    wait: float,
    as_json: bool,
) -> None:
    applied = status is not None and not _waiting(status)
    result = {
        "payment_id": str(payment_id),
        "payer_account": payer,
        "decision": verdict,
        "applied": applied,
        "status": status[0] if status else None,
        "code": status[1] if status else None,
    }
    if as_json:
        click.echo(json.dumps(result))
    elif applied:
        code = f" ({result['code']})" if result["code"] else ""
        click.echo(f"{DECIDED[verdict]}: {payment_id} is {result['status']}{code}")
    else:
        click.echo(
            f"{DECIDED[verdict]}: the decision is on review.decisions; {payment_id} is still "
            f"REVIEW in PostgreSQL after {wait:.0f} s (are the worker and the sink running?)"
        )


def _publish(
    settings: Settings, payers: dict[uuid.UUID, str], verdict: str, by: str, note: str
) -> None:
    """The decisions, each on its payer's partition of ``review.decisions``."""
    from confluent_kafka import Producer

    from schemas.partitioning import partition_for
    from schemas.review import ReviewDecision
    from schemas.topics import REVIEW_DECISIONS
    from services.bootstrap import kafka_producer_config

    producer = Producer(kafka_producer_config(settings))
    for payment_id, payer in payers.items():
        decision = ReviewDecision(
            payment_id=payment_id,
            payer_account=payer,
            verdict=verdict,
            decided_by=by[:64],
            note=note[:500],
            decided_at=datetime.now(UTC),
        )
        producer.produce(
            settings.topic(REVIEW_DECISIONS),
            key=payer.encode(),
            value=decision.model_dump_json().encode(),
            partition=partition_for(payer, settings.kafka_partitions),
        )
    if producer.flush(settings.connect_timeout_s * 3) > 0:
        raise PaystreamError(f"Kafka at {settings.kafka_bootstrap} did not take the decisions")
