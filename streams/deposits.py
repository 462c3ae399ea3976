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

The one gap: a credit the sink has not booked yet while ``deposit_memory``
newer deposits of the same account push it out of the balance's memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping

from services.errors import InfrastructureError
from streams.connection import Connection
from streams.runtime import die
from streams.state import NO_BALANCE, Balance

EXIT_DEPOSITS = 74
READ_TIMEOUT_S = 30.0


class DepositRecall:
    def __init__(
        self, connection: Connection, balances: MutableMapping[str, Balance], keep: int
    ) -> None:
        self.connection = connection
        self.balances = balances
        self.keep = keep

    async def prepare(self, raw: bytes) -> None:
        """Before a ``chain.events`` record is decided: remember each of its
        deposits' last credit if the balance has forgotten it (stop the worker
        if the ledger cannot say)."""
        for deposit_id, account in named_deposits(raw):
            await self._recall(deposit_id, account)

    async def _recall(self, deposit_id: str, account: str) -> None:
        balance = self.balances.get(account, NO_BALANCE)
        if deposit_id in balance.deposits:
            return
        try:
            k = await asyncio.wait_for(self._booked(deposit_id), timeout=READ_TIMEOUT_S)
        except (InfrastructureError, TimeoutError) as exc:
            die(EXIT_DEPOSITS, f"the ledger cannot be read to decide a deposit: {exc!r}")
            return
        if k != 0:
            self.balances[account] = balance.recalled(deposit_id, k, self.keep)

    async def _booked(self, deposit_id: str) -> int:
        await self.connection.ready.wait()
        known = await self.connection.ports.ledger.deposit_credits([deposit_id])
        return known.get(deposit_id, 0)


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
