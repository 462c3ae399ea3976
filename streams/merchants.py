"""The worker's merchant directory: the registered merchants in memory, for the
fraud stage to check a request's merchant and fix its fee.

Loaded from PostgreSQL (the ``Merchants`` port) every ``merchant_refresh_s``,
and at once when a request names a merchant it does not know (at most once a
second), before the request is decided: a merchant registered a moment ago is
known to a payment that names it, unless the directory was reloaded less than
a second before that payment and after the registration (then the payment is
refused ``UNKNOWN_MERCHANT``). If PostgreSQL cannot be read for
such a request, the worker stops with ``EXIT_MERCHANTS`` (73) instead of
rejecting a payment for a merchant that may exist; its supervisor restarts it
and the request is read again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping

import faust

from schemas.merchants import Merchant
from services.errors import InfrastructureError
from streams.connection import Connection
from streams.runtime import die

log = logging.getLogger("paystream.streams")

EXIT_MERCHANTS = 73
MISS_RELOAD_S = 1.0  # a request naming an unknown merchant reloads at most this often
LOAD_TIMEOUT_S = 30.0  # for a request that waits on it: then the worker stops


class MerchantDirectory(Mapping[str, Merchant]):
    def __init__(
        self, connection: Connection, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.connection = connection
        self.monotonic = monotonic
        self.known: dict[str, Merchant] = {}
        self.loaded_at = -float("inf")

    def __getitem__(self, merchant_id: str) -> Merchant:
        return self.known[merchant_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)

    async def reload(self) -> None:
        await self.connection.ready.wait()
        self.loaded_at = self.monotonic()
        self.known = await self.connection.ports.merchants.load()

    async def prepare(self, raw: bytes) -> None:
        """Before a ``payments.requested`` record is decided: if it names a
        merchant not known here, reload (stop the worker if that fails)."""
        merchant_id = named_merchant(raw)
        if merchant_id is None or merchant_id in self.known:
            return
        if self.monotonic() - self.loaded_at < MISS_RELOAD_S:
            return
        try:
            await asyncio.wait_for(self.reload(), timeout=LOAD_TIMEOUT_S)
        except (InfrastructureError, TimeoutError) as exc:
            die(EXIT_MERCHANTS, f"merchants cannot be read to decide a request: {exc!r}")


def named_merchant(raw: bytes) -> str | None:
    """The ``merchant_id`` a request names (None: none, or not readable; the
    fraud stage rejects what it cannot read)."""
    if b'"merchant_id"' not in raw:
        return None
    try:
        value = json.loads(raw).get("merchant_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def register(app: faust.App, directory: MerchantDirectory, refresh_s: float) -> None:
    """Keep the directory fresh (a Faust timer; a failed refresh is logged and
    the known merchants are kept)."""

    @app.timer(interval=refresh_s)
    async def refresh_merchants() -> None:
        try:
            await asyncio.wait_for(directory.reload(), timeout=LOAD_TIMEOUT_S)
        except (InfrastructureError, TimeoutError) as exc:
            log.warning("merchants not refreshed (%r); keeping %d known", exc, len(directory))
        except Exception:
            log.exception("merchants not refreshed: unexpected error")
