"""Writes of concurrent requests grouped into one statement.

One batch is written at a time; the items submitted while it is written go
together in the next one. Under load one statement carries many; when quiet
each item goes at once, with no wait for others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

CLOSE_TIMEOUT_S = 10.0


class Batcher(Generic[T, R]):
    """``write`` takes a batch of items and returns one result per item, in
    order; its exception is each item's. Two items with the same ``key`` never
    share a batch (the later one waits for the next)."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        name: str,
        key: Callable[[T], Hashable] = id,
    ) -> None:
        self.write = write
        self.name = name
        self.key = key
        self.pending: list[tuple[T, asyncio.Future[R]]] = []
        self.writing: asyncio.Task[None] | None = None

    def submit(self, item: T) -> asyncio.Future[R]:
        """``item``'s result, once its batch is written."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.pending.append((item, done))
        if self.writing is None:
            self.writing = asyncio.create_task(self._run(), name=self.name)
        return done

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        later: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        for entry in self.pending:
            key = self.key(entry[0])
            (later if key in keys else batch).append(entry)
            keys.add(key)
        self.pending = later
        return batch

    async def _run(self) -> None:
        try:
            while self.pending:
                batch = self._take()
                try:
                    results = await self.write([item for item, _ in batch])
                    for (_, done), result in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(result)
                except Exception as exc:  # noqa: BLE001 - each caller gets it
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
        finally:
            self.writing = None

    async def close(self) -> None:
        """Once the items submitted so far are written (or the timeout passed)."""
        writing = self.writing
        if writing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writing), CLOSE_TIMEOUT_S)
