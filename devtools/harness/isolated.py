"""An isolated pipeline on the shared local stack: its own app id (consumer
group and tables), topic prefix, state directory, web port and contract
deployment, so runs (tests, benchmarks) never see each other's records."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.stack.anvil import AnvilService
from devtools.stack.base import StatePaths
from services.bootstrap import deploy_guarded
from services.settings import Settings
from streams.ops.topics import create_topics


@dataclass(frozen=True)
class Isolated:
    settings: Settings
    env: dict[str, str]  # the same settings for child processes (PAYSTREAM_*)
    base: Settings  # the shared stack's settings (its pid files)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_chain(settings: Settings) -> Iterator[Settings]:
    """An anvil of its own: a fresh chain on a free port with the same block time,
    its state under ``settings.state_dir``; the settings that point at it."""
    chain = settings.model_copy(update={"anvil_port": free_port(settings.host)})
    paths = StatePaths(chain)
    paths.ensure()
    node = AnvilService(chain, paths)
    node.start()
    try:
        yield chain
    finally:
        node.stop()


def isolated(base: Settings, name: str, state_dir: Path, **overrides: object) -> Isolated:
    """Settings for a pipeline called ``name``, its contracts deployed and its
    topics created. Every topic it uses starts with ``name``."""
    values: dict[str, object] = {
        "state_dir": state_dir,
        "app_id": name,
        "topic_prefix": f"{name}-",
        "worker_web_port": free_port(base.host),
        "sink_metrics_port": free_port(base.host),
        **overrides,
    }
    settings = base.model_copy(update=values)
    env = {
        f"PAYSTREAM_{k.upper()}": json.dumps(sorted(v)) if isinstance(v, frozenset) else str(v)
        for k, v in values.items()
    }
    asyncio.run(deploy_once(settings))
    create_topics(settings)
    return Isolated(settings, env, base)


async def deploy_once(settings: Settings) -> None:
    """Deploy the contracts for these settings, unless already deployed (never
    over payments in flight: ``deploy_guarded``)."""
    await deploy_guarded(settings)
