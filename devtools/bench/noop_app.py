"""The no-op Faust baseline: one app, one agent per hop, each copying its topic's
raw bytes to the next topic (``paystream bench noop-worker``).

The app is built as the engine's (``streams.app.faust_app``: its transport, acks
from all replicas, commit interval, stream buffer, linger, in-memory store, the
same partition count); its web server is off (nothing to serve, and no port to
collide with). What is left is Faust's own per-event cost: one ``async for``
step and one awaited ``send`` per record.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from devtools.bench.hops import child_env
from devtools.harness.process import CliProcess
from services.settings import Settings


def create_noop_app(settings: Settings, app_id: str, topics: Sequence[str], datadir: Path) -> Any:
    """A Faust app with ``len(topics) - 1`` agents: agent i sends topics[i] to topics[i+1]."""
    from streams.app import faust_app  # only in the worker process, not in the driver

    app = faust_app(settings, app_id, web_enabled=False, datadir=str(datadir))
    declared = [
        app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        for name in topics
    ]
    for i, (source, sink) in enumerate(itertools.pairwise(declared)):
        app.agent(source, name=f"hop{i + 1}")(_pass_through(sink))
    return app


def _pass_through(sink: Any) -> Callable[[Any], Awaitable[None]]:
    async def hop(stream: Any) -> None:
        async for key, value in stream.items():
            await sink.send(key=key, value=value)

    return hop


class NoopWorkerProcess(CliProcess):
    """``paystream bench noop-worker``: the Faust worker with the no-op agents."""

    def __init__(
        self, settings: Settings, log: Path, app_id: str, topics: list[str], datadir: Path
    ) -> None:
        super().__init__(settings, log, child_env(settings))
        self.app_id, self.topics, self.datadir = app_id, topics, datadir

    def command(self) -> tuple[str, ...]:
        args = ["bench", "noop-worker", "--app-id", self.app_id, "--datadir", str(self.datadir)]
        for topic in self.topics:
            args += ["--topic", topic]
        return tuple(args)
