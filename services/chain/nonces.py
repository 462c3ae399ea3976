"""One gap-free nonce sequence per sending account.

The next nonce is read from the node (``pending`` count) the first time an
account sends and after any failed send, so a restart or a failure resumes from
the node's state. A per-account lock is held from reserving a nonce until the
transaction is accepted by the node, so concurrent senders never share or skip
a nonce.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class NonceManager:
    def __init__(self, pending_count: Callable[[str], Awaitable[int]]) -> None:
        self._pending_count = pending_count
        self._next: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def reserve(self, address: str) -> AsyncIterator[int]:
        """Yield the next nonce; it is consumed only if the block exits cleanly."""
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            if address not in self._next:
                self._next[address] = await self._pending_count(address)
            nonce = self._next[address]
            try:
                yield nonce
            except BaseException:
                # Unknown whether the node took it: ask the node next time.
                self._next.pop(address, None)
                raise
            self._next[address] = nonce + 1

    def forget(self, address: str) -> None:
        """Ask the node again next time (e.g. a reorg dropped a sent transaction)."""
        self._next.pop(address, None)
