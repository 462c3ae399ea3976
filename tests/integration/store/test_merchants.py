"""Merchants: the ``Merchants`` port's contract (in memory and on PostgreSQL),
and ``paystream merchants create|list`` on the real database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from eth_account import Account

from schemas.merchants import Merchant
from services.bootstrap import pg_pool
from services.ports import Merchants
from services.settings import Settings
from services.store.merchants import PostgresMerchants, create_merchant
from services.store.schema import upgrade
from tests.integration.conftest import connect
from tests.integration.firstrun.test_cli_errors import assert_one_line_fix, paystream
from tests.support.fakes import MemoryMerchants

pytestmark = pytest.mark.integration

Register = Callable[[Merchant], Merchant]


def _merchant(merchant_id: str, fee_bps: int = 250) -> Merchant:
    address = Account.create().address.lower()
    return Merchant(
        merchant_id=merchant_id, name=merchant_id, payout_address=address, fee_bps=fee_bps
    )


@pytest_asyncio.fixture(params=["memory", "postgres"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Merchants, Register]]:
    """The port, and how to register a merchant behind it."""
    if request.param == "memory":
        memory = MemoryMerchants()
        yield memory, memory.add
        return
    settings: Settings = request.getfixturevalue("fresh_db")
    upgrade(settings)

    def register(merchant: Merchant) -> Merchant:
        with connect(settings, settings.pg_database) as conn:
            return create_merchant(conn, merchant, "test")

    async with pg_pool(settings) as pool:
        yield PostgresMerchants(pool), register


async def test_load_returns_every_registered_merchant(
    registry: tuple[Merchants, Register],
) -> None:
    port, register = registry
    assert await port.load() == {}
    shop, cafe = _merchant("shop"), _merchant("cafe", fee_bps=0)
    register(shop)
    register(cafe)
    assert await port.load() == {"shop": shop, "cafe": cafe}


def test_the_cli_registers_merchants_once_per_payout_address(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    env = {"PAYSTREAM_PG_DATABASE": fresh_db.pg_database}
    address = Account.create().address  # EIP-55
    done = paystream(
        env,
        "merchants",
        "create",
        "Corner Shop",
        "--payout-address",
        address,
        "--fee-bps",
        "250",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["merchant_id"].startswith("mer_")
    assert (created["payout_address"], created["fee_bps"]) == (address.lower(), 250)
    api_key = created.pop("api_key")
    assert api_key.startswith("psk_") and created.pop("scopes") == [
        "payments:write",
        "payments:read",
        "reviews:write",
    ]

    again = paystream(env, "merchants", "create", "Copy", "--payout-address", address)
    assert_one_line_fix(again, "already registered")
    listed = paystream(env, "merchants", "list", "--json")
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [created]
    with connect(fresh_db, fresh_db.pg_database) as conn:
        rows = conn.execute("SELECT action, entity FROM audit_log").fetchall()
    merchant = created["merchant_id"]
    assert rows == [("merchant.created", merchant), ("api_key.created", merchant)]
    assert api_key.split("_")[2] not in listed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payout-address", "0x" + "0" * 40], "zero address"),
        (["--payout-address", "0xAbCdEf0000000000000000000000000000000000"], "EIP-55"),
        (["--payout-address", "0x12", "--fee-bps", "250"], "not an address"),
    ],
)
def test_the_cli_refuses_an_address_that_cannot_be_paid(
    fresh_db: Settings, args: list[str], message: str
) -> None:
    done = paystream(
        {"PAYSTREAM_PG_DATABASE": fresh_db.pg_database}, "merchants", "create", "X", *args
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
