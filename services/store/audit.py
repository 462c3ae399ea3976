"""The append-only audit log, chained by hashes: each row's hash covers the
previous row's hash and its own canonical content, so editing, deleting or
inserting a row anywhere breaks the chain from there on (``paystream audit verify``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

GENESIS = bytes(32)


def _content(
    seq: int, at: datetime, actor: str, action: str, entity: str, detail: dict[str, Any]
) -> bytes:
    body = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "entity": entity,
        "detail": detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev: bytes, content: bytes) -> bytes:
    return hashlib.sha256(prev + content).digest()


def append(
    conn: psycopg.Connection[Any], actor: str, action: str, entity: str, detail: dict[str, Any]
) -> int:
    """Append one row (within the caller's transaction, if any); returns its number."""
    with conn.transaction():
        conn.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        last = conn.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        prev = bytes(last[0]) if last else GENESIS
        row = conn.execute("SELECT nextval(pg_get_serial_sequence('audit_log', 'seq'))").fetchone()
        assert row is not None
        seq = int(row[0])
        at = datetime.now(UTC)
        digest = chain_hash(prev, _content(seq, at, actor, action, entity, detail))
        conn.execute(
            "INSERT INTO audit_log (seq, at, actor, action, entity, detail, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (seq, at, actor, action, entity, Jsonb(detail), prev, digest),
        )
        return seq


@dataclass(frozen=True)
class Broken:
    seq: int
    reason: str


def verify(conn: psycopg.Connection[Any]) -> list[Broken]:
    """Walk the chain; every row whose link or content does not check out."""
    broken: list[Broken] = []
    prev = GENESIS
    rows = conn.execute(
        "SELECT seq, at, actor, action, entity, detail, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    for seq, at, actor, action, entity, detail, prev_hash, stored in rows:
        if bytes(prev_hash) != prev:
            broken.append(Broken(seq, "link to the previous row broken"))
        expected = chain_hash(bytes(prev_hash), _content(seq, at, actor, action, entity, detail))
        if expected != bytes(stored):
            broken.append(Broken(seq, "content does not match its hash"))
        prev = bytes(stored)
    return broken
