"""Holds for review end: payments the fraud rules hold are approved, denied
(``paystream review``, as an operator would) or left to expire, while the worker
is SIGKILLed between the decisions. Every held payment gets one outcome and no
hold is left."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 40.0
EXPIRY_S = 40  # the sweep runs every 30 s: expired ones fail 40 to 70 s after their hold


def review(p: FaultPipeline, *args: str) -> list[dict[str, Any]]:
    """``paystream review ... --json`` with the scenario's env: its JSON lines."""
    out = p.cli("review", *args, "--json")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_held(p: FaultPipeline, at_least: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    held = review(p, "list")
    while len(held) < at_least and time.monotonic() < deadline:
        time.sleep(1.0)
        held = review(p, "list")
    return held


def test_reviews_approved_denied_and_expired(faults: Faults) -> None:
    """A velocity limit of 3 requests a minute sends most of a burst to REVIEW;
    a third is approved, a third denied (the worker SIGKILLed in between), the
    rest expire."""
    p = faults.pipeline(fraud_velocity_max_count=3, review_expiry_s=EXPIRY_S)
    p.start(workers=1)
    payers = p.payers(4)
    p.fund(payers)
    count = scaled(60)
    with publishing(p.load(payers, payees=12), RATE_PER_S, count) as sent:
        ids = sent.result().ids
    held = wait_held(p, count - 3 * len(payers))
    p.mark(f"{len(held)} of {len(ids)} payments held for review")
    assert len(held) >= count // 2, f"only {len(held)} of {count} held for review"
    third = len(held) // 3
    approved = [h["payment_id"] for h in held[:third]]
    denied = [h["payment_id"] for h in held[third : 2 * third]]
    review(p, "approve", *approved, "--note", "called the payer", "--by", "ops", "--wait", "0")
    p.supervisor.kill("worker-1")
    p.sleep(0.0, 2.0)
    p.supervisor.start("worker-1")
    decided = review(p, "deny", *denied, "--by", "ops", "--wait", "60")
    assert [d["status"] for d in decided] == ["FAILED"] * len(denied), decided
    p.mark(f"approved {len(approved)}, denied {len(denied)}, the rest left to expire")
    assert_invariants(p, ids, timeout_s=150 + EXPIRY_S)
    traces = p.collector.traces(ids)
    codes = {pid: traces[pid].code for pid in ids}
    assert all(codes[pid] is None and traces[pid].tx_hash for pid in approved), codes
    assert {codes[pid] for pid in denied} == {"REVIEW_DENIED"}
    expired = {h["payment_id"] for h in held} - set(approved) - set(denied)
    assert {codes[pid] for pid in expired} == {"REVIEW_EXPIRED"}
