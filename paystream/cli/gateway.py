"""``paystream gateway``: the merchant REST API (docs/api.md), served by uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from types import FrameType
from typing import Any

import click

from services.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=int, default=None, help="[default: PAYSTREAM_GATEWAY_PORT, 18080]")
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="A line per request (method, path, status; never a header or body).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes serving the port [default: PAYSTREAM_GATEWAY_WORKERS, 1].",
)
@click.pass_obj
def gateway(
    settings: Settings, host: str, port: int | None, access_log: bool, workers: int | None
) -> None:
    """Serve the merchant API: payments with API keys, mandates and idempotency
    keys; OpenAPI at /openapi.json, interactive docs at /docs (migrates the
    schema first, as the worker does)."""
    from services.bootstrap import prepare_schema
    from services.metrics.targets import registered
    from streams.ops.topics import create_topics

    prepare_schema(settings)
    create_topics(settings)
    port = port or settings.gateway_port
    # uvicorn re-raises the SIGTERM it shut down on: exit through SystemExit
    # instead, so that the targets file is removed on the way out.
    signal.signal(signal.SIGTERM, _exit_quietly)
    with registered(settings, f"gateway-{port}", f"{settings.host}:{port}"):
        serve(settings, host, port, access_log, workers or settings.gateway_workers)


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


def serve(settings: Settings, host: str, port: int, access_log: bool, workers: int = 1) -> None:
    """uvicorn on ``port``: this process, or ``workers`` processes started by
    uvicorn, each with its own connections and settings from the environment;
    their metrics are merged through prometheus-client's multiprocess files."""
    import uvicorn

    from paystream.gateway.app import app_from_environment, create_app

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "proxy_headers": False,
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, freeze_heap=True), **options)
        return
    _fresh_metrics_dir(settings, port)
    factory = f"{app_from_environment.__module__}:{app_from_environment.__name__}"
    uvicorn.run(factory, factory=True, workers=workers, **options)


def _fresh_metrics_dir(settings: Settings, port: int) -> None:
    """An empty directory for the workers' metric files, named in the
    environment they inherit (values of earlier processes would be counted)."""
    from services.metrics.catalogue import MULTIPROC_ENV

    directory = settings.state_dir / "gateway" / f"metrics-{port}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
