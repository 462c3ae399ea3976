"""``paystream gateway``: the merchant REST API (docs/api.md), served by uvicorn."""

from __future__ import annotations

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
@click.pass_obj
def gateway(settings: Settings, host: str, port: int | None, access_log: bool) -> None:
    """Serve the merchant API: payments with API keys, mandates and idempotency
    keys; OpenAPI at /openapi.json, interactive docs at /docs (migrates the
    schema first, as the worker does)."""
    import uvicorn

    from paystream.gateway.app import create_app
    from services.bootstrap import prepare_schema
    from streams.ops.topics import create_topics

    prepare_schema(settings)
    create_topics(settings)

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port or settings.gateway_port,
        log_level="info",
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
    )
