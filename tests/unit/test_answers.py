"""The gateway's answers are stored in batches (paystream/gateway/answers.py):
those given while a batch is written go together in the next one, a store that
fails loses only its batch, and closing waits for what was given."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from paystream.gateway.answers import Answers
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
    assert store.batches == [["a"], ["b", "c"]] and answers.writing is None


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
