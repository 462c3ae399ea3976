"""The worker's chain node down, silent, slow, or too expensive to use: the
engine may wait, retry or fail a payment, but never lose one, pay one twice,
or fail one that the chain then pays."""

from __future__ import annotations

import time

from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.proxy import Fault
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 20.0
OUTAGE_S = 30.0
SEND = frozenset({"eth_sendRawTransaction"})


def test_rpc_outage_of_30_s(faults: Faults) -> None:
    """Every call of the worker to the node fails (connection reset) for 30 s
    (x scale), while payments keep coming."""
    p = faults.pipeline()
    p.start()
    payers = p.payers(20)
    p.fund(payers)
    outages = scaled(1)
    count = int(RATE_PER_S * (OUTAGE_S + 8) * outages)
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        for _ in range(outages):
            p.sleep(2.0, 6.0)
            with p.proxy.faulty(Fault("drop")):
                p.mark("RPC outage: every call reset")
                time.sleep(OUTAGE_S)
            p.mark("RPC back")
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=240)


def _timeouts(p: FaultPipeline) -> None:
    """One round of silent and slow calls, each for a random few seconds."""
    p.sleep(1.0, 3.0)
    with p.proxy.faulty(Fault("blackhole")):
        p.mark("RPC black hole: no call answered")
        p.sleep(6.0, 10.0)
    p.sleep(1.0, 3.0)
    with p.proxy.faulty(Fault("lost_reply", methods=SEND)):
        p.mark("RPC: transactions reach the node, their answers are lost")
        p.sleep(6.0, 10.0)
    with p.proxy.faulty(Fault("delay", delay_s=p.rng.uniform(1.0, 2.5))):
        p.mark("RPC: every answer late")
        p.sleep(5.0, 8.0)
    p.mark("RPC answering again")


def test_rpc_timeouts(faults: Faults) -> None:
    """Calls that hang until the client's timeout, transactions whose answer
    is lost after the node took them, and slow answers (x scale)."""
    p = faults.pipeline(chain_rpc_timeout_s=3.0)
    p.start()
    payers = p.payers(20)
    p.fund(payers)
    rounds = scaled(1)
    count = int(RATE_PER_S * 30 * rounds)
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        for _ in range(rounds):
            _timeouts(p)
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=240)
