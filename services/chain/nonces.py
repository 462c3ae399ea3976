"""One gap-free nonce sequence per sending account, shared by every process
that sends from it.

The next nonce is always the node's ``pending`` count, read while the account's
lock is held: the lock is held from reading it until the node has accepted the
transaction, so no two senders ever share or skip a nonce. The lock is a
process-local one, and also a cross-process one when given (the worker's is a
PostgreSQL advisory lock: several workers share one operator key safely, one
sender at a time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

SharedLock = Callable[[str], AbstractAsyncContextManager[None]]  # account -> lock


@asynccontextmanager
async def _no_shared_lock(_address: str) -> AsyncIterator[None]:
    yield


class NonceManager:
    def __init__(
        self, pending_count: Callable[[str], Awaitable[int]], shared: SharedLock | None = None
    ) -> None:
        self._pending_count = pending_count
        self._shared = shared or _no_shared_lock
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def reserve(self, address: str) -> AsyncIterator[int]:
        """Yield the account's next nonce, holding its locks until the block exits
        (send the transaction inside it)."""
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock, self._shared(address):
            yield await self._pending_count(address)
