"""The demo's and the bench's shared harness without a service: requests built
from the wire contract, outcomes folded record by record, a demo that needs no
library of the ``bench`` extra, and a bench that names the extra when it is missing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from pydantic import ValidationError

from devtools.harness.collect import Outcomes
from devtools.harness.load import encode, request, request_body
from schemas.payments import PaymentRequested

PAYEE = str(Account.create().address)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_request_is_the_model_and_its_record_validates_back() -> None:
    req = request("payer-1", PAYEE, 1_500)
    key, value = encode(req)

    assert key == b"payer-1"
    assert PaymentRequested.model_validate_json(value) == req
    assert b"null" not in value  # unset optional fields are left out
    assert req.requested_at.tzinfo is not None
    assert PaymentRequested.model_validate(request_body("payer-1", PAYEE, 7)).amount == 7
    assert request("payer-1", PAYEE, 1).payment_id != req.payment_id


@pytest.mark.parametrize(
    ("payer", "payee", "amount"),
    [("payer-1", PAYEE, 0), ("not an account", PAYEE, 1), ("payer-1", PAYEE.lower(), 1)],
)
def test_the_generator_cannot_build_a_request_the_engine_refuses(
    payer: str, payee: str, amount: int
) -> None:
    with pytest.raises(ValidationError):
        request(payer, payee, amount)


def _settled(pid: str, event: str, at: datetime) -> dict[str, Any]:
    return {
        "payment_id": pid,
        "event_id": event,
        "requested_at": T0.isoformat(),
        "settled_at": at.isoformat(),
        "tx_hash": "0xaa",
    }


def test_outcomes_count_redeliveries_and_second_outcomes_apart() -> None:
    pid, other = str(uuid.uuid4()), str(uuid.uuid4())
    outcomes = Outcomes(keep_records=True)
    first = _settled(pid, "e1", T0 + timedelta(seconds=2))

    outcomes.add("settled", first, read_s=10.0)
    outcomes.add("settled", _settled(pid, "e1", T0 + timedelta(seconds=5)), read_s=11.0)
    second = {**first, "event_id": "e2", "code": "X", "failed_at": T0.isoformat()}
    outcomes.add("failed", second, read_s=12.0)
    outcomes.add("settled", _settled(other, "e3", T0 + timedelta(seconds=1)), read_s=13.0)

    assert (outcomes.redelivered, outcomes.duplicates) == (1, 1)
    assert outcomes.settled == {pid: first, other: outcomes.settled[other]}
    assert outcomes.failed == {}
    assert outcomes.finished([pid, other, "unknown"]) == 2
    assert outcomes.last_s == 13.0
    trace = outcomes.traces[pid]
    assert trace.requested_s == T0.timestamp()
    assert trace.stages["settled"] == (T0 + timedelta(seconds=2)).timestamp()  # first kept
    assert trace.tx_hash == "0xaa"


def test_outcomes_trace_every_stage_and_keep_only_the_asked_payments() -> None:
    pid = str(uuid.uuid4())
    outcomes = Outcomes(ids=frozenset({pid}))
    scored = {
        "request": {"payment_id": pid, "requested_at": T0.isoformat()},
        "scored_at": (T0 + timedelta(milliseconds=5)).isoformat(),
    }
    submitted = {  # a batch's record: the asked payment and one not asked
        "payments": [
            {"payment_id": pid, "requested_at": T0.isoformat()},
            {"payment_id": str(uuid.uuid4()), "requested_at": T0.isoformat()},
        ],
        "submitted_at": (T0 + timedelta(milliseconds=300)).isoformat(),
    }

    outcomes.add("submitted", submitted, read_s=1.0)
    outcomes.add("scored", scored, read_s=1.0)
    outcomes.add("scored", {"request": None}, read_s=1.0)  # not a request's record
    outcomes.add("settled", _settled(str(uuid.uuid4()), "e9", T0), read_s=2.0)  # not asked

    assert list(outcomes.traces) == [pid]
    assert outcomes.traces[pid].stages == {
        "submitted": T0.timestamp() + 0.3,
        "scored": T0.timestamp() + 0.005,
    }
    assert outcomes.finished([pid]) == 0
    assert outcomes.settled == {} and outcomes.last_s == 0.0


def test_the_demo_imports_no_library_of_the_bench_extra() -> None:
    """``pip install paystream`` without extras must run ``paystream demo``: the
    demo, its harness, the worker and the sink load with psutil, matplotlib and
    orjson made unimportable."""
    blocked = ("psutil", "matplotlib", "orjson")
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"
        "import paystream.cli, devtools.demo.run, streams.app, streams.sink\n"
        "import streams.ops.reconcile, faust.worker\n"
        "from paystream.cli import cli\n"
        "cli.main(['demo', '--help'], standalone_mode=False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--payments" in done.stdout


def test_a_bench_command_without_the_bench_extra_names_the_fix() -> None:
    code = (
        "import sys; sys.modules['psutil'] = None\n"
        "sys.argv = ['paystream', 'bench', 'raw', '--records', '10']\n"
        "from paystream.cli import main; main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: this benchmark needs psutil:"), done.stderr
    assert "bench extra" in done.stderr and "Traceback" not in done.stderr
