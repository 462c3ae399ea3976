"""The worker's ports, which exist only once the worker runs.

The chain client needs the contract deployment, so ``connect``
(``services.bootstrap.worker_ports``) is called from a Faust task when the
worker starts, never at import or in ``create_app``. The scheduler and the chain
listener wait for ``ready`` before they touch a port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import faust

from services.ports import WorkerPorts


class Connection:
    ports: WorkerPorts  # set once ``ready`` is set

    def __init__(self, connect: Callable[[], Awaitable[WorkerPorts]]) -> None:
        self._connect = connect
        self.ready = asyncio.Event()

    async def open(self) -> None:
        self.ports = await self._connect()
        self.ready.set()


def register(app: faust.App, connection: Connection) -> None:
    """Connect when the worker starts (a Faust task)."""

    @app.task
    async def connect_ports() -> None:
        await connection.open()
