"""The gateway on a fresh, migrated database and topics of its own (no worker:
requests stay on ``payments.requested``, where the tests read them)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.settings import Settings
from tests.support.gateway import gateway_server, gateway_settings


@pytest.fixture(scope="module")
def gw_settings(stack_healthy: Settings) -> Iterator[Settings]:
    with gateway_settings(stack_healthy) as settings:
        yield settings


@pytest.fixture(scope="module")
def api(gw_settings: Settings) -> Iterator[httpx.Client]:
    with gateway_server(gw_settings) as client:
        yield client
