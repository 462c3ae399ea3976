"""The admin actions' record (``admin_actions``) and their audit rows: a
request is written before its transactions are sent, its end (the
transactions' hashes, or why it failed) after; each with its audit-log row in
the same transaction."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.store import audit
from services.store.ledger import is_payer_account


def requested(
    conn: psycopg.Connection[Any], actor: str, action: str, params: dict[str, Any]
) -> uuid.UUID:
    action_id = uuid.uuid4()
    with conn.transaction():
        conn.execute(
            "INSERT INTO admin_actions (action_id, action, params, actor) VALUES (%s, %s, %s, %s)",
            (action_id, action, Jsonb(params), actor),
        )
        audit.append(conn, actor, f"admin.{action}.requested", str(action_id), params)
    return action_id


def ended(
    conn: psycopg.Connection[Any],
    action_id: uuid.UUID,
    tx_hashes: list[str],
    error: str | None = None,
) -> None:
    """The action done (every transaction mined) or failed (``error``; the
    transactions sent before it failed are listed too)."""
    status = "failed" if error else "done"
    with conn.transaction():
        row = conn.execute(
            "UPDATE admin_actions SET status = %s, tx_hashes = %s, error = %s, ended_at = now()"
            " WHERE action_id = %s AND status = 'requested' RETURNING actor, action, params",
            (status, tx_hashes, error, action_id),
        ).fetchone()
        if row is None:
            raise LookupError(f"admin action {action_id} is not waiting for its end")
        actor, action, params = row
        detail = {"params": params, "tx_hashes": tx_hashes, "status": status}
        if error:
            detail["error"] = error
        audit.append(conn, actor, f"admin.{action}.{status}", str(action_id), detail)


def owed_to_payers(conn: psycopg.Connection[Any]) -> int:
    """What the ledger owes the payers (``is_payer_account``), as
    reconciliation counts it."""
    rows = conn.execute("SELECT account, sum(amount) FROM ledger_entries GROUP BY account")
    return sum(int(total) for account, total in rows if is_payer_account(account))
