"""A small JSON-RPC proxy in front of anvil, so a scenario can make the worker's
node slow, unreachable or silent without touching the node itself.

The worker is pointed at it with ``PAYSTREAM_CHAIN_RPC_ENDPOINT``; the test's
own chain reads go to anvil directly, so the faults hit the engine only. It
speaks just enough HTTP/1.1 for a JSON-RPC client (a request with a
``Content-Length`` body, keep-alive), because it must decide per request:

- ``delay``: answer after ``delay_s``;
- ``drop``: reset the connection without an answer (a node that is down);
- ``blackhole``: never forward and never answer until the fault is lifted (a
  network that swallows packets: the client times out);
- ``lost_reply``: forward (the node acts on it, e.g. a transaction enters the
  mempool) but never answer: the client cannot tell whether it happened.

Each fault may be limited to some JSON-RPC methods. It runs on an event loop in
a thread of its own, so a blocking test drives it between its own steps.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal

from aiohttp import ClientError, ClientSession, ClientTimeout

FaultKind = Literal["pass", "delay", "drop", "blackhole", "lost_reply"]
HEAD_LIMIT = 64 * 1024
UPSTREAM_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Fault:
    kind: FaultKind = "pass"
    delay_s: float = 0.0
    methods: frozenset[str] | None = None  # None: every method

    def applies(self, methods: set[str]) -> bool:
        return self.kind != "pass" and (self.methods is None or bool(methods & self.methods))


PASS = Fault()


def methods_of(body: bytes) -> set[str]:
    """The JSON-RPC methods of a request body (a single call or a batch)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return set()
    calls = payload if isinstance(payload, list) else [payload]
    return {str(c.get("method")) for c in calls if isinstance(c, dict)}


class RpcProxy:
    """``url`` forwards to ``upstream`` (anvil's URL) unless a fault is set."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.fault = PASS
        self.seen: Counter[str] = Counter()  # fault kind applied -> requests
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rpc-proxy")
        self._server: asyncio.Server | None = None
        self._session: ClientSession | None = None
        self._lifted = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RpcProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def set(self, fault: Fault) -> None:
        """Apply ``fault`` to the requests from now on (``PASS`` lifts it)."""

        def apply() -> None:
            self.fault = fault
            self._lifted.set()  # wake held requests: they re-check the fault
            self._lifted = asyncio.Event()

        self._loop.call_soon_threadsafe(apply)

    @contextmanager
    def faulty(self, fault: Fault) -> Iterator[None]:
        """``fault`` for the duration of the block, lifted even if it raises."""
        self.set(fault)
        try:
            yield
        finally:
            self.set(PASS)

    async def _open(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=UPSTREAM_TIMEOUT_S))
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=HEAD_LIMIT)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.set(PASS)
        if self._session is not None:
            await self._session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: requests one after the other (keep-alive)."""
        try:
            while (request := await _read_request(reader)) is not None:
                keep_alive, body = request
                answer = await self._answer(body)
                if answer is None:
                    writer.transport.abort()  # reset, no answer
                    return
                writer.write(answer)
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with suppress(ConnectionError, RuntimeError):
                writer.close()

    async def _answer(self, body: bytes) -> bytes | None:
        """The HTTP response to send, or None to reset the connection."""
        fault = self.fault
        if not fault.applies(methods_of(body)):
            return await self._forward(body)
        self.seen[fault.kind] += 1
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return await self._forward(body)
        if fault.kind == "lost_reply":
            with suppress(Exception):  # the node acts on it; the client never hears
                await self._forward(body)
        if fault.kind in ("blackhole", "lost_reply"):
            while self.fault == fault:  # silent until the fault is lifted
                await self._lifted.wait()
        return None

    async def _forward(self, body: bytes) -> bytes | None:
        assert self._session is not None
        try:
            async with self._session.post(
                self.upstream, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                payload = await response.read()
                status = response.status
        except (ClientError, OSError, TimeoutError):
            return None  # the node itself is unreachable: so is the proxy
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: keep-alive\r\n\r\n"
        )
        return head.encode() + payload


async def _read_request(reader: asyncio.StreamReader) -> tuple[bool, bytes] | None:
    """(keep-alive, body) of the next request; None at the end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ConnectionError("chunked request bodies are not supported")
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    keep_alive = headers.get("connection", "keep-alive").lower() != "close"
    return keep_alive, body
