"""Deposits the worker no longer remembers, read from the ledger.

Each account's balance remembers its last ``deposit_memory`` deposits (their
credit numbers), which covers a replay of ``chain.events`` and a reorg within
finality. The ledger remembers every deposit for good (the ``deposits`` table,
written with its entries). Before the reconciler decides a deposit event (a
confirmed deposit, or a reorg removing one) whose deposit the balance does not
remember, it reads the deposit's last credit from the ledger and remembers it:
a deposit the chain shows again (a lost listener cursor, a listener started
from an earlier block) is then known, and credited once. If the ledger cannot
be read, the worker stops with ``EXIT_DEPOSITS`` (74) instead of deciding
blind; its supervisor restarts it and the event is read again.

A record carries a poll's events (ADR 0019), maybe several deposits of one
account, more than its balance remembers, so deciding one may push another
out of the memory: the credits of all of them are read at once before the
record is decided (``booked``), and each deposit's is remembered, if its
balance has forgotten it, just before that deposit is decided
(``streams/stages/reorg.py``), as when each came in a record of its own.

The one gap: a credit the sink has not booked yet while ``deposit_memory``
newer deposits of the same account push it out of the balance's memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from services.errors import InfrastructureError
from streams.connection import Connection
from streams.runtime import die
from streams.state import NO_BALANCE, Balance

EXIT_DEPOSITS = 74
READ_TIMEOUT_S = 30.0


class DepositRecall:
    def __init__(self, connection: Connection, balances: Mapping[str, Balance]) -> None:
        self.connection = connection
        self.balances = balances
        # deposit id -> the last credit number the ledger booked for it, for the
        # record being decided (the reconciler's ``ReconcileDeps.booked``)
        self.booked: dict[str, int] = {}

    async def prepare(self, raw: bytes) -> None:
        """Before a ``chain.events`` record is decided: if a balance has
        forgotten one of its deposits, read from the ledger the last credits of
        all of them, since deciding one may push another out of its balance's
        memory (stop the worker if the ledger cannot say)."""
        self.booked.clear()
        named = named_deposits(raw)
        remembered = all(d in self.balances.get(a, NO_BALANCE).deposits for d, a in named)
        if remembered and len(named) <= 1:
            return
        try:
            deposit_ids = [d for d, _ in named]
            known = await asyncio.wait_for(self._booked(deposit_ids), timeout=READ_TIMEOUT_S)
        except (InfrastructureError, TimeoutError) as exc:
            die(EXIT_DEPOSITS, f"the ledger cannot be read to decide a deposit: {exc!r}")
            return
        self.booked.update({d: k for d, k in known.items() if k != 0})

    async def _booked(self, deposit_ids: list[str]) -> dict[str, int]:
        await self.connection.ready.wait()
        return await self.connection.ports.ledger.deposit_credits(deposit_ids)


def named_deposits(raw: bytes) -> list[tuple[str, str]]:
    """The deposit ids and accounts a ``chain.events`` record names, in order
    (none: settlements' events only, or not readable: the reconciler sends
    what it cannot read to the DLQ)."""
    if b'"deposit_id"' not in raw:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(value, dict):
        return []
    nested = value.get("events")
    events = (
        [e.get("event") for e in nested if isinstance(e, dict)]
        if isinstance(nested, list)
        else [value]
    )
    named = []
    for event in events:
        if isinstance(event, dict):
            deposit_id, account = event.get("deposit_id"), event.get("account")
            if isinstance(deposit_id, str) and isinstance(account, str):
                named.append((deposit_id, account))
    return named
