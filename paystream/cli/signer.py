"""``paystream signer``: the approval signer, a process of its own."""

from __future__ import annotations

import ipaddress
import json
import logging
import urllib.request

import click

from services.errors import ConfigError
from services.settings import Settings


@click.group(invoke_without_command=True)
@click.pass_context
def signer(ctx: click.Context) -> None:
    """Run the approval signer in the foreground, on this host.

    It alone holds the approval keys (PAYSTREAM_SIGNER_MNEMONIC; locally the
    chain mnemonic's keys 2..). Workers ask it to approve each batch above the
    contract's approval threshold; it signs only for the recorded contract and
    only within its policy file (PAYSTREAM_SIGNER_POLICY_FILE): a per-batch cap,
    a rolling 24-hour cap and, optionally, the payees allowed. Without it such
    batches wait, held; none fails for it."""
    if ctx.invoked_subcommand is not None:
        return
    from aiohttp import web

    from services.signer.server import build_signer, signer_app

    settings: Settings = ctx.obj
    if not ipaddress.ip_address(settings.host).is_loopback:
        raise ConfigError(f"the signer listens on this host only, not on {settings.host}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = signer_app(build_signer(settings))
    click.echo(f"signer on {settings.signer_url}", err=True)
    web.run_app(app, host=settings.host, port=settings.signer_port, print=None)


@signer.command("status")
@click.pass_obj
def status(settings: Settings) -> None:
    """The running signer's addresses, policy and what it approved in 24 h."""
    request = urllib.request.Request(  # noqa: S310 - the signer's own http URL
        f"{settings.signer_url}/v1/status",
        headers={"Authorization": f"Bearer {settings.signer_token.get_secret_value()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.signer_timeout_s) as answer:  # noqa: S310
            click.echo(json.dumps(json.load(answer), indent=2))
    except OSError as exc:
        raise ConfigError(
            f"no signer answers at {settings.signer_url} ({exc}): start it with `paystream signer`"
        ) from exc
