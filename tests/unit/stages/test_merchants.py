"""Merchant payments: a request's merchant is honoured only when its payee is
the merchant's payout address; the fee is fixed when the payment is scored and
paid on chain, and the reconciler checks it. The worker's merchant directory
reloads when a request names a merchant it does not know."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address

from schemas.merchants import Merchant
from schemas.payments import PaymentFailed, PaymentScored, PaymentSettled
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED, PAYMENTS_SETTLED
from services.ports import WorkerPorts
from streams.connection import Connection
from streams.listener import chain_record
from streams.merchants import MerchantDirectory, named_merchant
from streams.stages.fraud import handle_request
from streams.stages.reconcile import handle_chain_event
from streams.stages.settlement.batching import handle_scored, take_due_batches
from streams.stages.settlement.submit import settle
from streams.stages.submitted import handle_submitted
from streams.state import Balance, Status
from tests.support.fakes import (
    FakeChain,
    MemoryClaimStore,
    MemoryCursorStore,
    MemoryLedgerStore,
    MemoryMerchants,
)
from tests.unit.stages.conftest import World, confirmed, key_of, raw, request, summary

SHOP = Merchant(
    merchant_id="shop",
    name="Shop",
    payout_address=Account.create().address.lower(),
    fee_bps=250,
)


def _pay_shop(amount: int) -> dict[str, object]:
    """A request for the shop, paid to its payout address."""
    return request(
        amount=amount, merchant_id="shop", payee_address=to_checksum_address(SHOP.payout_address)
    )


def _decided(world: World, body: dict[str, object]) -> tuple[str, bytes]:
    world.balances.setdefault("alice", Balance(available=10**9))
    (emit,) = handle_request(raw(body), "alice", world.fraud).emits
    return emit.topic, emit.payload()


@pytest.mark.parametrize(
    ("merchants", "code"),
    [({}, "UNKNOWN_MERCHANT"), ({"shop": SHOP}, "NOT_MERCHANT_PAYEE")],
)
def test_a_merchant_is_honoured_only_for_its_payout_address(
    world: World, merchants: dict[str, Merchant], code: str
) -> None:
    world.merchants.update(merchants)
    topic, payload = _decided(world, request(merchant_id="shop"))  # a random payee
    assert topic == PAYMENTS_FAILED
    assert PaymentFailed.model_validate_json(payload).code == code
    assert world.balances["alice"].summary() == summary(available=10**9)


def test_the_fee_is_fixed_when_the_payment_is_scored(world: World) -> None:
    world.merchants["shop"] = SHOP
    body = _pay_shop(1_999)
    topic, payload = _decided(world, body)
    assert topic == FRAUD_SCORED
    assert PaymentScored.model_validate_json(payload).fee == 49  # floor(1999 * 2.5 %)
    world.merchants["shop"] = SHOP.model_copy(update={"fee_bps": 9_000})  # a new rate
    assert world.payments[key_of(body)].fee == 49


async def test_a_merchant_payment_pays_its_fee_on_chain_and_settles_with_it(world: World) -> None:
    world.merchants["shop"] = SHOP
    body = _pay_shop(1_999)
    _, payload = _decided(world, body)
    handle_scored(payload, 0, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    (sent,) = await settle(batch, world.ports, world.settings, world.clock)
    handle_submitted(sent.payload(), world.submitted)
    assert world.chain.fees == 49
    assert world.chain.balances[to_checksum_address(SHOP.payout_address)] == 1_999 - 49
    (event,) = await world.chain.events(1, await world.chain.block_number())
    claims = await world.claims.claims_of([world.payments[key_of(body)].sequence or 0])
    record = chain_record(event, claims)
    outcome = handle_chain_event(record.payload(), "ref", world.reconcile)
    (settled,) = outcome.emits
    assert settled.topic == PAYMENTS_SETTLED
    assert PaymentSettled.model_validate_json(settled.payload()).fee == 49
    assert world.payments[key_of(body)].status == Status.SETTLED
    assert world.balances["alice"].summary() == summary(10**9 - 1_999, 0, 1_999)


async def test_a_settlement_with_another_fee_is_a_mismatch(world: World) -> None:
    world.merchants["shop"] = SHOP
    body = _pay_shop(1_000)
    _decided(world, body)
    state = world.payments[key_of(body)]
    # The chain paid the payee without taking the fee.
    paid_in_full = confirmed(state.payment_id, state.payee_address, 1_000, fee=0)
    outcome = handle_chain_event(paid_in_full, "ref", world.reconcile)
    assert outcome.note == "alert:MISMATCH"
    assert world.payments[key_of(body)].status == Status.MISMATCH  # held for an operator
    assert world.balances["alice"].held == 1_000


def test_requests_name_their_merchant_or_none() -> None:
    assert named_merchant(json.dumps({"merchant_id": "shop"}).encode()) == "shop"
    assert named_merchant(b'{"amount": 5}') is None
    assert named_merchant(b'{"merchant_id": 5}') is None
    assert named_merchant(b'not json "merchant_id"') is None


async def test_the_directory_reloads_for_an_unknown_merchant_at_most_once_a_second() -> None:
    port = MemoryMerchants()
    now = [100.0]
    connection = Connection(lambda: _ports(port))
    await connection.open()
    directory = MerchantDirectory(connection, monotonic=lambda: now[0])
    shop = raw(request(merchant_id="shop"))
    await directory.prepare(raw(request()))  # no merchant: nothing read
    assert port.loads == 0
    port.add(SHOP)  # registered just now
    await directory.prepare(shop)
    assert directory["shop"] == SHOP and port.loads == 1
    await directory.prepare(shop)  # known
    await directory.prepare(raw(request(merchant_id="other")))  # unknown, but within the second
    assert port.loads == 1
    now[0] += 1.5
    await directory.prepare(raw(request(merchant_id="other")))
    assert port.loads == 2 and "other" not in directory


async def _ports(merchants: MemoryMerchants) -> WorkerPorts:
    return WorkerPorts(
        FakeChain(), MemoryCursorStore(), MemoryClaimStore(), merchants, MemoryLedgerStore()
    )
