"""The PostgreSQL advisory lock the workers' senders share (one sender per
operator key): two pools stand in for two worker processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from services.bootstrap import pg_pool
from services.errors import StoreUnavailable
from services.settings import Settings
from services.store.locks import advisory_lock


async def test_one_holder_at_a_time_across_pools_and_a_bounded_wait(
    stack_healthy: Settings,
) -> None:
    async with pg_pool(stack_healthy) as first, pg_pool(stack_healthy) as second:
        lock_a = advisory_lock(first, "test-sender", timeout_s=5)
        lock_b = advisory_lock(second, "test-sender", timeout_s=0.3)
        order: list[str] = []
        async with lock_a("0xA"):
            with pytest.raises(StoreUnavailable):
                async with lock_b("0xA"):
                    order.append("b while a holds")
            async with lock_b("0xB"):  # another account is another lock
                order.append("b on 0xB")
            waiter = asyncio.ensure_future(_hold(advisory_lock(second, "test-sender", 5), order))
            await asyncio.sleep(0.2)
            order.append("a releases")
        await waiter
        assert order == ["b on 0xB", "a releases", "b after a"]
        async with first.connection() as conn:  # the pool's connections are as they were
            assert not conn.autocommit
            row = await (await conn.execute("SHOW lock_timeout")).fetchone()
            assert row == ("0",)


async def _hold(lock: Callable[[str], AbstractAsyncContextManager[None]], order: list[str]) -> None:
    async with lock("0xA"):
        order.append("b after a")
