"""Settlement halts on PostgreSQL: a reorg deeper than ``finality_depth`` stops
every worker from sending until an operator has checked the chain and resumes
(``paystream chain resume-settlement``). At most one halt is open at a time;
each keeps who resumed it and when. The workers halt and read it through the
claim store (``services/store/claims.py``); operators resume it here."""

from __future__ import annotations

from typing import Any

import psycopg

HALT = """
INSERT INTO settlement_halts (reason) VALUES (%s)
ON CONFLICT ((true)) WHERE resumed_at IS NULL DO NOTHING
"""
OPEN_HALT = "SELECT reason FROM settlement_halts WHERE resumed_at IS NULL"
RESUME = """
UPDATE settlement_halts SET resumed_at = now(), resumed_by = %s
WHERE resumed_at IS NULL RETURNING reason
"""


def resume(conn: psycopg.Connection[Any], by: str) -> str | None:
    """End the open halt (its reason), or None when none was open."""
    row = conn.execute(RESUME, (by,)).fetchone()
    conn.commit()
    return str(row[0]) if row else None
