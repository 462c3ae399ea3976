"""The gateway bench's load generator, run in a process of its own (so the
bench's own work does not share its CPU): POSTs with idempotency keys from up
to ``concurrency`` connections, either as fast as the gateway answers (closed
loop) or at a fixed offered rate (open loop).

At a fixed rate, request ``i`` is due at ``i / rate`` s and its time is counted
from then, not from when a connection was free to send it: a gateway that
falls behind shows it in the latency instead of slowing the load down
(coordinated omission)."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

import aiohttp
import uvloop


async def _post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
) -> int:
    key = {"Idempotency-Key": f"load-{uuid.uuid4()}"}
    async with session.post(url, json=body, headers=headers | key) as answer:
        await answer.read()
        return answer.status


async def _closed(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    concurrency: int,
) -> list[tuple[int, float]]:
    answers: list[tuple[int, float]] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            began = time.perf_counter()
            status = await _post(session, url, headers, body)
            answers.append((status, (time.perf_counter() - began) * 1000))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return answers


async def _open(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    rate_per_s: float,
) -> list[tuple[int, float]]:
    answers: list[tuple[int, float]] = []
    started = time.perf_counter()

    async def one(due: float, body: dict[str, Any]) -> None:
        status = await _post(session, url, headers, body)
        answers.append((status, (time.perf_counter() - due) * 1000))

    tasks = []
    for i, body in enumerate(bodies):
        due = started + i / rate_per_s
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(due, body)))
    await asyncio.gather(*tasks)
    return answers


async def _load(
    url: str,
    api_key: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    rate_per_s: float | None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        if rate_per_s is None:
            answers = await _closed(session, url, headers, bodies, concurrency)
        else:
            answers = await _open(session, url, headers, bodies, rate_per_s)
        elapsed = time.perf_counter() - started
    return {"answers": answers, "elapsed_s": elapsed}


def run_load(
    url: str,
    api_key: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    rate_per_s: float | None = None,
) -> dict[str, Any]:
    """Every POST's status and milliseconds, and the seconds they all took
    (``rate_per_s``: offered at that rate; None: as fast as answered)."""
    gc.freeze()  # the bodies, the modules: out of the collector's sight (no pauses)
    return uvloop.run(_load(url, api_key, bodies, concurrency, rate_per_s))
