"""What the worker counts of its outputs in Prometheus: a refused request is
``rejected``, a payment the engine could not settle ``failed`` (only those
count against the success rate the alerts watch), and every fraud check's
duration."""

from __future__ import annotations

from dataclasses import replace

from schemas.codes import FailureCode
from schemas.payments import PaymentFailed
from services.metrics.catalogue import Metrics
from streams.runtime import DlqGuard, Runtime
from streams.stages.fraud import handle_request
from streams.state import Balance
from streams.windows import StageWindows
from tests.support.fakes import MemoryWindowStore
from tests.unit.stages.conftest import World, raw, request


def test_rejections_and_engine_failures_are_counted_apart(world: World) -> None:
    now = [1_000.0]
    windows = StageWindows(MemoryWindowStore(), lambda: now[0])
    runtime = Runtime(world.settings, {}, world.clock, DlqGuard(10, 0.9), windows, Metrics.create())
    world.balances["alice"] = Balance(available=10_000)
    (scored,) = handle_request(raw(request("alice")), "alice", world.fraud).emits
    (refused,) = handle_request(raw(request("bob")), "bob", world.fraud).emits  # no funds
    assert isinstance(refused.value, PaymentFailed)
    assert refused.value.code == FailureCode.INSUFFICIENT_FUNDS
    timed_out = refused.value.model_copy(update={"code": FailureCode.SETTLEMENT_TIMEOUT})
    for emit in (scored, refused, replace(refused, value=timed_out)):
        runtime.observe(emit)
    sample = runtime.metrics.registry.get_sample_value
    counts = {
        (stage, outcome): sample(
            "paystream_stage_records_total", {"stage": stage, "outcome": outcome}
        )
        for stage, outcome in [("scored", "ok"), ("settled", "rejected"), ("settled", "failed")]
    }
    assert counts == {("scored", "ok"): 1, ("settled", "rejected"): 1, ("settled", "failed"): 1}
    assert sample("paystream_fraud_check_seconds_count", {}) == 3  # every decided request
    now[0] += 1
    counted = windows.snapshot()["stages"]
    assert counted["scored"]["1s"]["ok"] == 1
    assert (counted["settled"]["1s"]["rejected"], counted["settled"]["1s"]["failed"]) == (1, 1)
