"""The gateway bench's load generator, run in a process of its own (so the
bench's own work does not share its CPU): ``count`` POSTs with idempotency keys
from ``concurrency`` connections, as fast as the gateway answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp


async def _load(
    url: str, api_key: str, bodies: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    answers: list[tuple[int, float]] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {api_key}"}

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            began = time.perf_counter()
            key = {"Idempotency-Key": f"load-{uuid.uuid4()}"}
            async with session.post(url, json=body, headers=headers | key) as answer:
                await answer.read()
                answers.append((answer.status, (time.perf_counter() - began) * 1000))

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"answers": answers, "elapsed_s": elapsed}


def run_load(
    url: str, api_key: str, bodies: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    """Every POST's status and milliseconds, and the seconds they all took."""
    return asyncio.run(_load(url, api_key, bodies, concurrency))
