"""An operator's decisions on held payments (``paystream review`` and
``paystream mismatches``): checked against PostgreSQL, written to the audit
log, published on ``review.decisions`` (each on its payer's partition, where
the payment's state lives), then waited for until the sink shows them applied."""

from __future__ import annotations

import getpass
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from services.errors import PaystreamError
from services.settings import Settings

DECIDED = {"APPROVE": "approved", "DENY": "denied", "ACCEPT": "accepted", "REJECT": "rejected"}
# PostgreSQL's status and failure code of a payment (None: no row yet).
Status = tuple[str, str | None] | None


@dataclass(frozen=True)
class Held:
    """Where the payments a command decides on are held."""

    what: str  # "held for review", "in MISMATCH": for messages
    audit_prefix: str  # audit action: f"{prefix}.{verdict}"
    payers_of: Callable[[Any, uuid.UUID], list[str]]  # the payers holding a payment id
    waiting: Callable[[Status], bool]  # not applied yet


def decision_options(f: Any) -> Any:
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


def decide_all(
    settings: Settings,
    held: Held,
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
        payers = {pid: _held_payer(conn, held, pid, payer) for pid in payment_ids}
        for pid, who in payers.items():
            detail = {"payer_account": who, "verdict": verdict, "note": note}
            audit.append(
                conn, decided_by, f"{held.audit_prefix}.{verdict.lower()}", str(pid), detail
            )
        _publish(settings, payers, verdict, decided_by, note)
        deadline = time.monotonic() + wait
        statuses = {pid: status_of(conn, pid, who) for pid, who in payers.items()}
        while time.monotonic() < deadline and any(held.waiting(s) for s in statuses.values()):
            time.sleep(0.5)
            statuses = {pid: status_of(conn, pid, who) for pid, who in payers.items()}
    for pid, status in statuses.items():
        _report(pid, payers[pid], verdict, status, not held.waiting(status), wait, as_json)


def _held_payer(conn: Any, held: Held, payment_id: uuid.UUID, payer: str | None) -> str:
    payers = [p for p in held.payers_of(conn, payment_id) if payer in (None, p)]
    if not payers:
        raise PaystreamError(f"no payment {payment_id} is {held.what}")
    if len(payers) > 1:
        raise PaystreamError(
            f"{payment_id} is {held.what} for several payers ({', '.join(payers)}): use --payer"
        )
    return payers[0]


def _report(
    payment_id: uuid.UUID,
    payer: str,
    verdict: str,
    status: Status,
    applied: bool,
    wait: float,
    as_json: bool,
) -> None:
    decided = DECIDED[verdict]
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
        click.echo(f"{decided}: {payment_id} is {result['status']}{code}")
    else:
        click.echo(
            f"{decided}: the decision is on review.decisions; PostgreSQL does not show it "
            f"applied to {payment_id} after {wait:.0f} s (are the worker and the sink running?)"
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
