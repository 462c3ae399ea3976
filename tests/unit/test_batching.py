"""Concurrent writes grouped into one statement (paystream/gateway/batching.py):
items submitted while a batch is written go together in the next one, two with
the same key never share one, a failed write is each of its callers' error;
the gateway's answers are stored that way (paystream/gateway/answers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest

from paystream.gateway.answers import Answers
from paystream.gateway.batching import Batcher
from services.errors import StoreUnavailable
from services.store.gateway import Answer, GatewayStore


class Store:
    """The store port's ``answered``: each batch recorded; a write waits for
    ``gate`` and fails while ``down``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.down = False

    async def answered(self, answers: Sequence[Answer]) -> None:
        await self.gate.wait()
        if self.down:
            raise StoreUnavailable("down")
        self.batches.append([a.key for a in answers])


def _answers(store: Store) -> Answers:
    return Answers(cast(GatewayStore, store))


def _answer(key: str) -> Answer:
    return Answer("m", key, 202, "{}")


async def test_answers_given_during_a_write_go_in_the_next_batch() -> None:
    store = Store()
    answers = _answers(store)
    answers.put(_answer("a"))
    await asyncio.sleep(0)  # the first write has begun, and waits
    answers.put(_answer("b"))
    answers.put(_answer("c"))
    store.gate.set()
    await answers.close()
    assert store.batches == [["a"], ["b", "c"]] and answers.batches.writing is None


async def test_a_failed_write_loses_its_batch_only() -> None:
    store = Store()
    store.gate.set()
    store.down = True
    answers = _answers(store)
    answers.put(_answer("a"))
    await answers.close()
    store.down = False
    answers.put(_answer("b"))
    await answers.close()
    assert store.batches == [["b"]]


async def test_each_caller_gets_its_result_and_keys_never_share_a_batch() -> None:
    batches: list[list[str]] = []

    async def write(items: Sequence[str]) -> list[str]:
        batches.append(list(items))
        await asyncio.sleep(0)
        return [item.upper() for item in items]

    batcher: Batcher[str, str] = Batcher(write, "test", key=lambda item: item[0])
    results = await asyncio.gather(*(batcher.submit(i) for i in ("a1", "b1", "a2", "c1")))
    assert results == ["A1", "B1", "A2", "C1"]
    assert batches == [["a1", "b1", "c1"], ["a2"]]  # a2 waits: a1 has its key


async def test_a_failed_write_is_each_callers_error() -> None:
    async def write(items: Sequence[int]) -> list[int]:
        raise StoreUnavailable("down")

    batcher: Batcher[int, int] = Batcher(write, "test")
    first, second = batcher.submit(1), batcher.submit(2)
    for done in (first, second):
        with pytest.raises(StoreUnavailable):
            await done
