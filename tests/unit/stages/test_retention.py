"""Bounded state (streams/retention.py, streams/indexes.py): terminal payments
leave the ``payments`` table after ``payment_retention_s`` and their ids are
still recognised for ``payment_id_memory_s``; timers read an index, not the
whole table."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from schemas.codes import FailureCode
from schemas.partitioning import partition_for
from schemas.payments import PaymentFailed
from services.settings import Settings
from streams.indexes import payments_index, retired_index
from streams.retention import TIDY_PER_EVENT, Retention
from streams.stages.fraud import FraudDeps, handle_request
from streams.state import Balance, PaymentState, RetiredPayment, Status, VelocityWindow
from streams.tables import ModelTable
from tests.unit.stages.conftest import Clock, key_of, raw, request

DAY = timedelta(days=1)


class Tables:
    def __init__(self) -> None:
        self.settings = Settings()
        self.clock = Clock()
        self.store: dict[str, Any] = {}  # the payments table's raw values
        self.payments = ModelTable(self.store, PaymentState, payments_index(self.settings))
        self.retired = ModelTable({}, RetiredPayment, retired_index(self.settings))
        self.balances: dict[str, Balance] = {"alice": Balance(available=5_000)}
        self.retention = Retention(self.settings, self.payments, self.retired, self.clock)
        self.fraud = FraudDeps(
            self.settings,
            self.payments,
            self.balances,
            {},
            self.clock,
            retired=self.retired,
            retention=self.retention,
        )
        self.rebuild()  # what the worker's background rebuild does once it starts

    def rebuild(self) -> None:
        assert self.payments.rebuild_step(10**6) and self.retired.rebuild_step(10**6)

    def request(self, amount: int = 1_000) -> dict[str, Any]:
        body = request("alice", amount, requested_at=self.clock().isoformat())
        handle_request(raw(body), "alice", self.fraud)
        return body

    def tidy_all(self) -> None:
        home = partition_for("alice", self.settings.kafka_partitions)
        for _ in range(100):
            self.retention.tidy(home)


def test_terminal_payments_retire_and_their_ids_are_still_recognised() -> None:
    t = Tables()
    held = [t.request() for _ in range(3)]  # SCORED: held, in flight
    refused = [t.request(10_000) for _ in range(5)]  # INSUFFICIENT_FUNDS: terminal
    t.clock.now += 7 * DAY - timedelta(seconds=1)
    t.tidy_all()
    assert len(t.payments) == 8  # not yet
    t.clock.now += timedelta(seconds=2)
    t.tidy_all()
    assert {key_of(b) for b in held} == set(t.payments)
    assert {key_of(b) for b in refused} == set(t.retired)
    assert t.retention.retired_total == 5

    (emit,) = handle_request(raw(refused[0]), "alice", t.fraud).emits  # the same body again
    answer = PaymentFailed.model_validate_json(emit.payload())
    assert answer.code == FailureCode.PAYMENT_ID_CONFLICT
    assert "ended long ago" in answer.reason
    assert key_of(refused[0]) not in t.payments
    assert t.balances["alice"].summary()["held"] == 3_000

    t.clock.now += 30 * DAY
    t.tidy_all()
    assert len(t.retired) == 0 and t.retention.forgotten_total == 5


def test_each_request_retires_a_few_in_its_own_partition_only() -> None:
    t = Tables()
    for _ in range(2 * TIDY_PER_EVENT):
        t.request(10_000)
    t.clock.now += 8 * DAY
    other = (partition_for("alice", t.settings.kafka_partitions) + 1) % t.settings.kafka_partitions
    t.retention.tidy(other)
    assert len(t.payments) == 2 * TIDY_PER_EVENT
    t.request(10_000)  # the fraud agent tidies after each request; here by hand:
    t.retention.tidy(partition_for("alice", t.settings.kafka_partitions))
    assert len(t.retired) == TIDY_PER_EVENT


def test_the_index_answers_the_timers_and_is_rebuilt_after_a_rebalance() -> None:
    t = Tables()
    bodies = [t.request() for _ in range(2)]
    scored = {p.payment_id for p in t.payments.where("status", Status.SCORED)}
    assert {str(i) for i in scored} == {b["payment_id"] for b in bodies}
    # A value restored from the changelog does not pass through the index...
    restored = t.payments[key_of(bodies[0])].model_copy(update={"status": Status.REVIEW})
    t.store[key_of(bodies[0])] = restored.model_dump_json().encode()
    assert t.payments.index is not None
    t.payments.index.invalidate()  # ...so a rebalance invalidates it
    assert [p.payment_id for p in t.payments.where("status", Status.REVIEW)] == [
        restored.payment_id
    ]
    assert len(list(t.payments.where("status", Status.SCORED))) == 1


def test_velocity_values_stay_bounded() -> None:
    window = VelocityWindow()
    for i in range(5_000):
        window = window.add(i, 10**9, 1)
    assert len(window.entries) == 1024


def test_the_oldest_hold_per_status_is_read_from_the_index() -> None:
    """What ``paystream_oldest_hold_seconds`` exports: the age of the oldest
    SCORED payment, 0 for a status nobody is in, NaN until the index is rebuilt."""
    t = Tables()
    t.request()  # SCORED at the clock's start
    t.clock.now += timedelta(minutes=30)
    t.request()
    now_s = (t.clock.now + timedelta(minutes=10)).timestamp()
    assert t.payments.index is not None
    t.payments.index.invalidate()  # a rebalance
    assert math.isnan(t.payments.oldest_s(Status.SCORED.value, now_s))  # not rebuilt yet
    t.rebuild()
    assert t.payments.oldest_s(Status.SCORED.value, now_s) == 40 * 60
    assert t.payments.oldest_s(Status.SUBMITTED.value, now_s) == 0.0


def test_a_stale_index_is_rebuilt_a_step_at_a_time_while_the_table_changes() -> None:
    """After a rebalance the worker rebuilds the index in the background, a
    few entries a step; tidying waits meanwhile (``expired`` answers none),
    writes made between steps count, and the index it ends with is the one
    a rebuild at once gives."""
    t = Tables()
    held = [t.request() for _ in range(5)]  # SCORED: alice's 5,000 held
    refused = [t.request(10_000) for _ in range(7)]  # terminal
    t.clock.now += 8 * DAY
    assert t.payments.index is not None
    t.payments.index.invalidate()
    assert t.payments.stale
    assert not t.payments.rebuild_step(4)  # 4 of 12 scanned
    home = partition_for("alice", t.settings.kafka_partitions)
    assert t.payments.expired(home, t.clock.now.timestamp(), 100) == []  # tidying waits
    late = t.request(10_000)  # noted by its write, in the middle of the rebuild
    del t.payments[key_of(held[0])]  # deleted before (or after) its turn
    while not t.payments.rebuild_step(4):
        pass
    stepwise = t.payments.index
    assert {str(p.payment_id) for p in t.payments.where("status", Status.SCORED)} == {
        b["payment_id"] for b in held[1:]
    }
    expired = set(t.payments.expired(home, (t.clock.now + 8 * DAY).timestamp(), 100))
    assert expired == {key_of(b) for b in [*refused, late]}
    t.payments.index = payments_index(t.settings)
    t.payments.rebuild_step(10**6)
    assert t.payments.index.by_status == stepwise.by_status
